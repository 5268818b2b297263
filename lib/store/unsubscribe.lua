-- Atomically: suppress the address for campaigns, and mark the profile
-- as not consenting when it still has this address (or none).
redis.call('SADD', KEYS[1], ARGV[1])
local e = redis.call('HGET', KEYS[2], 'email')
if redis.call('EXISTS', KEYS[2]) == 1 and
   (not e or e == '' or string.lower(e) == ARGV[1]) then
  redis.call('HSET', KEYS[2], 'consent', 'false')
end
return 1
