-- Pause a running campaign with a reason. KEYS: hash; ARGV: reason.
if redis.call('HGET', KEYS[1], 'state') == 'running' then
  redis.call('HSET', KEYS[1], 'state', 'paused', 'reason', ARGV[1])
  return 1
end
return 0
