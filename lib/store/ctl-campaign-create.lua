-- KEYS: hash, P:campaigns, ledger; ARGV: name, then field/value pairs.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('campaign ' .. ARGV[1] .. ' exists')
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  return redis.error_reply('a ledger ' .. KEYS[3] .. ' is left from an earlier campaign of that name; use another name')
end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('SADD', KEYS[2], ARGV[1])
return 1
