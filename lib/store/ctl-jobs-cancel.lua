-- KEYS[1] P:jobs; ARGV[1] key, ARGV[2] "P:job:". Removes the job's index
-- entry and body (P:job:<client component of the key>); returns 1, or 0
-- when there was neither.
local c = string.match(ARGV[1], '^[^:]*:([^:]+):')
local n = redis.call('ZREM', KEYS[1], ARGV[1])
if c then n = n + redis.call('HDEL', ARGV[2] .. c, ARGV[1]) end
return n > 0 and 1 or 0
