-- KEYS[1] P:jobs. ARGV lease_ms, max, "P:job:".
-- Returns {next_score or "-1", zcard, now, key1, body1, key2, body2, ...}:
-- the due jobs in due order, now leased until now + lease. An index entry
-- without a body is removed. (The profiles are read by the fire path with
-- plain HGETALLs: an HGETALL inside the script costs Redis about three
-- times as much, converting the reply to Lua and back.)
--! include redis-now.inc.lua
local lease_end = now + tonumber(ARGV[1])
local JP = ARGV[3]
--! include sched-job-hash.inc.lua
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now,
                       'LIMIT', 0, tonumber(ARGV[2]))
local out = {'-1', 0, now}
local z = {}
for _, k in ipairs(due) do
  local h = jobhash(k)
  -- a job hash of the wrong type leaves its job where it is, unclaimed
  -- (pcall: an error would come after the ZREMs before it, kept by Redis)
  local b = h and redis.pcall('HGET', h, k)
  if type(b) == 'table' and b.err then
  elseif b then
    z[#z + 1] = lease_end
    z[#z + 1] = k
    out[#out + 1] = k
    out[#out + 1] = b
  else
    redis.call('ZREM', KEYS[1], k)
  end
end
for j = 1, #z, 1000 do
  redis.call('ZADD', KEYS[1], 'XX', unpack(z, j, math.min(j + 999, #z)))
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then out[1] = first[2] end
out[2] = redis.call('ZCARD', KEYS[1])
return out
