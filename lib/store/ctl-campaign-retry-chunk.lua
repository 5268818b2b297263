-- One chunk of retry: failed entries become queued again. KEYS: hash,
-- ledger, pending; ARGV: HSCAN cursor, count. Returns {cursor, moved}.
local r = redis.call('HSCAN', KEYS[2], ARGV[1], 'COUNT', ARGV[2])
local n = 0
local kv = r[2]
for i = 1, #kv, 2 do
  if string.sub(kv[i + 1], 1, 7) == 'failed:' and
     redis.call('HGET', KEYS[2], kv[i]) == kv[i + 1] then
    redis.call('HSET', KEYS[2], kv[i], 'queued')
    redis.call('SADD', KEYS[3], kv[i])
    n = n + 1
  end
end
if n > 0 then
  redis.call('HINCRBY', KEYS[1], 'failed', -n)
  redis.call('HINCRBY', KEYS[1], 'queued', n)
end
return {r[1], n}
