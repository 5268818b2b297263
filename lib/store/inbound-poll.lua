-- The inbound poller's lease and mailbox state (daemon/inbound.c).
-- KEYS[1] P:inbound-lease, KEYS[2] P:inbound; ARGV op, token, then
--   L ttl_ms now_ms: take or renew the lease; returns {1, uidvalidity,
--     last} (strings, '' when unset) for the holder, {0} for another
--   V uidvalidity now_ms error: a listing was read (error '' when it
--     worked): records the poll; a new UIDVALIDITY (the mailbox was
--     recreated, or this is the first poll) resets last to 0. Returns
--     {1, last} or {0} without the lease
--   R: release the lease if it is ours; returns 1 or 0
-- Types are checked first: nothing can fail after the first write.
for k, t in pairs({[KEYS[1]] = 'string', [KEYS[2]] = 'hash'}) do
  local have = redis.call('TYPE', k).ok
  if have ~= 'none' and have ~= t then
    return redis.error_reply('key ' .. k .. ' is a ' .. have .. ', not a ' .. t)
  end
end
local op, tok = ARGV[1], ARGV[2]
local holder = redis.call('GET', KEYS[1])
if op == 'L' then
  local ttl = tonumber(ARGV[3])
  if not ttl or ttl < 1 then return redis.error_reply('inbound-poll: bad ttl') end
  if holder and holder ~= tok then return {0} end
  redis.call('SET', KEYS[1], tok, 'PX', ttl)
  redis.call('HSET', KEYS[2], 'holder', tok)
  local h = redis.call('HMGET', KEYS[2], 'uidvalidity', 'last')
  return {1, h[1] or '', h[2] or ''}
elseif op == 'V' then
  if holder ~= tok then return {0} end
  local v = ARGV[3]
  if v ~= '' and redis.call('HGET', KEYS[2], 'uidvalidity') ~= v then
    redis.call('HSET', KEYS[2], 'uidvalidity', v, 'last', 0)
  end
  redis.call('HSET', KEYS[2], 'polled_at', ARGV[4], 'error', ARGV[5])
  if ARGV[5] == '' then redis.call('HSET', KEYS[2], 'ok_at', ARGV[4]) end
  return {1, redis.call('HGET', KEYS[2], 'last') or '0'}
elseif op == 'R' then
  if holder ~= tok then return 0 end
  redis.call('DEL', KEYS[1])
  return 1
end
return redis.error_reply('inbound-poll: unknown op')
