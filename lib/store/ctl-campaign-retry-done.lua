-- After retry: run again (a new generation tells a runner to take the
-- pending set again). KEYS: hash.
local st = redis.call('HGET', KEYS[1], 'state')
redis.call('HINCRBY', KEYS[1], 'gen', 1)
if st ~= 'running' and st ~= 'scheduled' then
  redis.call('HSET', KEYS[1], 'state', 'running', 'reason', '')
end
redis.call('HSET', KEYS[1], 'err_sent', 0, 'err_failed', 0)
redis.call('HDEL', KEYS[1], 'finished')
return redis.call('HGET', KEYS[1], 'state')
