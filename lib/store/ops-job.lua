-- The console's and sukictl's job actions. KEYS[1] P:jobs, KEYS[2]
-- P:jobs-held; ARGV[1] run | hold | release, ARGV[2] the job key.
-- run: due now (a job due later is moved to now; one already due, or
-- claimed by a scheduler, stays: its sent markers keep a message from going
-- out twice either way). hold: out of P:jobs into P:jobs-held with its
-- score, so no scheduler claims it; release: back. Returns 1, or 0 when the
-- job is not there (not scheduled, resp. not held).
--! include redis-now.inc.lua
for i = 1, 2 do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'zset' and t ~= 'none' then
    return redis.error_reply(KEYS[i] .. ' is a ' .. t .. ', not a zset')
  end
end
local op, k = ARGV[1], ARGV[2]
if op == 'run' then
  local s = redis.call('ZSCORE', KEYS[1], k)
  if not s then return 0 end
  if tonumber(s) > now then redis.call('ZADD', KEYS[1], now, k) end
  return 1
elseif op == 'hold' then
  local s = redis.call('ZSCORE', KEYS[1], k)
  if not s then return 0 end
  redis.call('ZREM', KEYS[1], k)
  redis.call('ZADD', KEYS[2], s, k)
  return 1
elseif op == 'release' then
  local s = redis.call('ZSCORE', KEYS[2], k)
  if not s then return 0 end
  redis.call('ZREM', KEYS[2], k)
  redis.call('ZADD', KEYS[1], s, k)
  return 1
end
return redis.error_reply('unknown job operation ' .. tostring(op))
