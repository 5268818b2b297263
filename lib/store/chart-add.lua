-- One daemon's figures of the last seconds into the minute's chart bucket
-- (the console's live charts: every daemon adds its own, and a restart
-- keeps the history). KEYS[1] P:chart:<minute>; ARGV[1] the bucket's TTL
-- (s), ARGV[2] the lateness maximum (ms) of the batch, then field, delta
-- pairs (HINCRBY). Arguments, the type and the fields' values are all
-- checked before the first write: Redis does not roll back a script that
-- fails midway, and a refused call leaves the daemon its figures for the
-- next heartbeat (another minute's bucket).
-- At most 15 digits: no sum of a bucket's deltas comes near HINCRBY's
-- int64 overflow, and Lua's numbers hold them exactly.
local function int(s)
  local d = string.match(s, '^%-?(%d+)$')
  return d and #d <= 15
end
if #ARGV < 2 or #ARGV % 2 ~= 0 or not int(ARGV[1]) or
   tonumber(ARGV[1]) < 1 or not int(ARGV[2]) then
  return redis.error_reply('chart-add: bad arguments')
end
local fs = {}
for i = 3, #ARGV, 2 do
  if not int(ARGV[i + 1]) then
    return redis.error_reply('chart-add: delta of ' .. ARGV[i] .. ' is not an integer')
  end
  fs[#fs + 1] = ARGV[i]
end
local t = redis.call('TYPE', KEYS[1])['ok']
if t ~= 'hash' and t ~= 'none' then
  return redis.error_reply(KEYS[1] .. ' is a ' .. t .. ', not a hash')
end
-- HINCRBY fails on a field that holds no integer
if #fs > 0 then
  local have = redis.call('HMGET', KEYS[1], unpack(fs))
  for x = 1, #fs do
    local v = have[x]
    if v and not int(v) then
      return redis.error_reply('chart-add: ' .. fs[x] .. ' in ' .. KEYS[1] .. ' is not a number')
    end
  end
end
for i = 3, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
local m = tonumber(ARGV[2])
if m > 0 and m > (tonumber(redis.call('HGET', KEYS[1], 'late_max_ms')) or -1) then
  redis.call('HSET', KEYS[1], 'late_max_ms', m)
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
