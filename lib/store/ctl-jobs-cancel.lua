-- KEYS[1] P:jobs, KEYS[2] P:jobs-held; ARGV[1] key, ARGV[2] "P:job:".
-- Removes the job's index entry (scheduled or held) and body
-- (P:job:<client component of the key>); returns 1, or 0 when there was
-- none of them. Types are checked before the first write.
local c = string.match(ARGV[1], '^[^:]*:([^:]+):')
local want = {KEYS[1], 'zset', KEYS[2], 'zset'}
if c then want[5], want[6] = ARGV[2] .. c, 'hash' end
for i = 1, #want, 2 do
  local t = redis.call('TYPE', want[i])['ok']
  if t ~= want[i + 1] and t ~= 'none' then
    return redis.error_reply(want[i] .. ' is a ' .. t .. ', not a ' .. want[i + 1])
  end
end
local n = redis.call('ZREM', KEYS[1], ARGV[1]) + redis.call('ZREM', KEYS[2], ARGV[1])
if c then n = n + redis.call('HDEL', ARGV[2] .. c, ARGV[1]) end
return n > 0 and 1 or 0
