-- One daemon's figures of the last seconds into the minute's chart bucket
-- (the console's live charts: every daemon adds its own, and a restart
-- keeps the history). KEYS[1] P:chart:<minute>; ARGV[1] the bucket's TTL
-- (s), ARGV[2] the lateness maximum (ms) of the batch, then field, delta
-- pairs (HINCRBY). The type is checked before the first write.
local t = redis.call('TYPE', KEYS[1])['ok']
if t ~= 'hash' and t ~= 'none' then
  return redis.error_reply(KEYS[1] .. ' is a ' .. t .. ', not a hash')
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
