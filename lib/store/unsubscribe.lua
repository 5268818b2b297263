-- Atomically: suppress the address for campaigns, and mark the profile
-- as not consenting when it still has this address (or none). KEYS:
-- suppressed set, profile, P:subscribed (client -> ms its latest
-- consent.subscribed was applied); ARGV: address, client, the token's
-- issue time in seconds (0 for a token without one), the report counters'
-- month hash (P:report:<month>, '' without reports: an address newly
-- suppressed counts as an unsubscribe of the client's manager). A token issued
-- before that second is refused with no change: replaying an old link must
-- not undo a newer subscription. Returns 1 (unsubscribed) or
-- {'stale', subscribed ms}.
local issued = tonumber(ARGV[3])
if not issued then return redis.error_reply('unsubscribe: bad issue time') end
-- every type first: nothing may fail after the first write
local want = {'set', 'hash', 'hash'}
for i = 1, 3 do
  local t = redis.call('TYPE', KEYS[i]).ok
  if t ~= 'none' and t ~= want[i] then
    return redis.error_reply('key ' .. KEYS[i] .. ' is a ' .. t .. ', not a ' .. want[i])
  end
end
local sub = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '')
if sub and issued < math.floor(sub / 1000) then return {'stale', sub} end
local e = redis.call('HGET', KEYS[2], 'email')
local new = redis.call('SADD', KEYS[1], ARGV[1]) == 1
if new and (ARGV[4] or '') ~= '' then
  local m = redis.call('HGET', KEYS[2], 'manager') or ''
  redis.pcall('HINCRBY', ARGV[4], 'unsub ' .. m, 1)
  redis.pcall('EXPIRE', ARGV[4], 400 * 86400)
end
if redis.call('EXISTS', KEYS[2]) == 1 and
   (not e or e == '' or string.lower(e) == ARGV[1]) then
  -- the click is the newest word on consent: a consent.subscribed dated
  -- before it, arriving later, does not undo it (events apply by their at)
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('HSET', KEYS[2], 'consent', 'false', 'at:consent', ms)
end
return 1
