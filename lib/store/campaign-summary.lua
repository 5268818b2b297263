-- Record the owner's summary as done. KEYS: hash, sent marker; ARGV:
-- summary value, marker ttl (0 = no marker).
redis.call('HSET', KEYS[1], 'summary', ARGV[1])
if ARGV[2] ~= '0' then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
end
return 1
