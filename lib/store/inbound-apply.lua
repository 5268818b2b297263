-- One message of the inbound mailbox processed, in one step: its events
-- added to the stream, the address suppressed for campaigns, the counters,
-- and its UID marked done (P:inbound's last: UIDs are processed in
-- order), so a kill -9 anywhere leaves it either wholly done or not at
-- all, and a message done is never done again (it is only flagged).
-- KEYS[1] P:inbound-lease, KEYS[2] P:inbound, KEYS[3] the intake stream,
-- KEYS[4] P:suppressed. ARGV: token, uidvalidity, uid, kind, now ms,
-- lease ttl ms, address to suppress ('' none), then event documents
-- (validated by the daemon; each with an id derived from the message, so
-- the intake drops a second copy).
-- Returns {'ok', events added, 1 if newly suppressed}, {'done'} when the
-- UID was done before, {'lease'} without the lease, {'uidvalidity'} when
-- the mailbox changed meanwhile.
local want = {'string', 'hash', 'stream', 'set'}
for i = 1, 4 do
  local t = redis.call('TYPE', KEYS[i]).ok
  if t ~= 'none' and t ~= want[i] then
    return redis.error_reply('key ' .. KEYS[i] .. ' is a ' .. t .. ', not a ' .. want[i])
  end
end
local uid, ttl = tonumber(ARGV[3]), tonumber(ARGV[6])
if not uid or not ttl or ttl < 1 or ARGV[4] == '' then
  return redis.error_reply('inbound-apply: bad arguments')
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'lease'} end
local h = redis.call('HMGET', KEYS[2], 'uidvalidity', 'last', 'n:' .. ARGV[4],
  'uids', 'suppressed')
if h[1] ~= ARGV[2] then return {'uidvalidity'} end
if uid <= (tonumber(h[2]) or 0) then return {'done'} end
-- HINCRBY fails on a field that is no integer: refuse before writing
for i = 3, 5 do
  if h[i] and not string.match(h[i], '^%-?%d+$') then
    return redis.error_reply('inbound-apply: counter in ' .. KEYS[2] .. ' is not a number')
  end
end
for i = 8, #ARGV do
  redis.call('XADD', KEYS[3], '*', 'event', ARGV[i])
end
local added = 0
if ARGV[7] ~= '' then
  added = redis.call('SADD', KEYS[4], ARGV[7])
  if added == 1 then redis.call('HINCRBY', KEYS[2], 'suppressed', 1) end
end
redis.call('HINCRBY', KEYS[2], 'n:' .. ARGV[4], 1)
redis.call('HINCRBY', KEYS[2], 'uids', 1)
redis.call('HSET', KEYS[2], 'last', uid, 'done_at', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ttl)
return {'ok', #ARGV - 7, added}
