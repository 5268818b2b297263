-- The monthly report's planning read. KEYS[1] the month's counter hash
-- P:report:<YYYY-MM>, KEYS[2] P:jobs, KEYS[3] P:report-log: its entries
-- are folded first (the only write). ARGV: the end of the
-- contracts' window (epoch ms: jobs due before it), "P:job:", "P:client:",
-- then the job-key rule components (percent-encoded as in job keys) of the
-- rules triggered by contract.* events. A key of another type reads as
-- empty. Returns {counters (field, value)*, contracts (job key, body, the
-- client's manager, its name)*}: the contracts are those rules' pending
-- jobs, which sukid filters by their event's ends_at.
--! include redis-now.inc.lua
--! include report-fold.inc.lua
report_fold(string.sub(KEYS[3], 1, -12), now, 0)
local kv = {}
if redis.call('TYPE', KEYS[1]).ok == 'hash' then
  kv = redis.call('HGETALL', KEYS[1])
end
local rules = {}
for i = 4, #ARGV do rules[ARGV[i]] = true end
local out = {}
if #ARGV >= 4 and redis.call('TYPE', KEYS[2]).ok == 'zset' then
  local keys = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
  for _, k in ipairs(keys) do
    local p = string.find(k, ':', 1, true)
    local q = p and string.find(k, ':', p + 1, true)
    if q and rules[string.sub(k, 1, p - 1)] then
      local c = string.sub(k, p + 1, q - 1)
      local b = redis.pcall('HGET', ARGV[2] .. c, k)
      if type(b) == 'string' then
        local id = string.gsub(c, '%%(%x%x)', function(h)
          return string.char(tonumber(h, 16))
        end)
        local m = redis.pcall('HMGET', ARGV[3] .. id, 'manager', 'name')
        if m.err then m = {} end
        out[#out + 1] = k
        out[#out + 1] = b
        out[#out + 1] = m[1] or ''
        out[#out + 1] = m[2] or ''
      end
    end
  end
end
return {kv, out}
