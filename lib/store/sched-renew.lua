-- KEYS[1] P:jobs. ARGV lease_ms, "P:job:", then key body pairs: extend
-- the lease of jobs still held (same body) by a slow send to Redis's now +
-- lease_ms.
--! include redis-now.inc.lua
local lease_end = now + tonumber(ARGV[1])
local JP = ARGV[2]
--! include sched-job-hash.inc.lua
local n = 0
for i = 3, #ARGV, 2 do
  local h = jobhash(ARGV[i])
  if h and redis.call('HGET', h, ARGV[i]) == ARGV[i + 1] then
    redis.call('ZADD', KEYS[1], 'XX', lease_end, ARGV[i])
    n = n + 1
  end
end
return n
