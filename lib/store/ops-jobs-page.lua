-- One page of scheduled jobs in score order. KEYS[1] P:jobs; ARGV[1] min
-- score, ARGV[2] max score, ARGV[3] how many of the jobs scored exactly
-- min to skip (they were on the page before), ARGV[4] page size,
-- ARGV[5] "P:job:". Returns {key, score, body or false, ...}.
local JP = ARGV[5]
--! include sched-job-hash.inc.lua
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'none' then return {} end
if t ~= 'zset' then
  return redis.error_reply(KEYS[1] .. ' is a ' .. t .. ', not a zset')
end
local z = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[2], 'WITHSCORES',
                     'LIMIT', tonumber(ARGV[3]), tonumber(ARGV[4]))
local out = {}
for i = 1, #z, 2 do
  local h = jobhash(z[i])
  local b = h and redis.pcall('HGET', h, z[i])
  if type(b) == 'table' then b = false end
  out[#out + 1] = z[i]
  out[#out + 1] = z[i + 1]
  out[#out + 1] = b or false
end
return out
