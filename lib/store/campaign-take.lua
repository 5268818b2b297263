-- Take recipients that are queued but nobody sends: SPOP from the pending
-- set into the in-flight set (so each is taken once). ARGV[6] says what to
-- do first with the in-flight set: '1' (a runner starting) moves it into
-- the held set: it was left by an earlier runner that died, stalled or
-- stopped, and its delivery agent may still be sending those messages, so
-- they wait until every transfer that runner can have started has ended
-- (now + ARGV[9] ms: that runner started none after its lease ended, which
-- is before this one's began); '2' (a retry, with nothing of this
-- runner's in flight) moves it back into the pending set at once; '0'
-- leaves it. A held set whose time has come joins the pending set. One
-- whose P:sent marker exists went out (the delivery agent sets it even
-- when the runner died before recording it) and is recorded as sent; for
-- the others address, suppression and consent are checked again. ARGV:
-- token, prefix, count, opt-in, now, restore mode, campaign name, from
-- domain, hold ms. Returns {'ok', popped, completed, held, id, profile,
-- ...} (held: -1 nothing held, 0 released now, else ms to wait),
-- {'state', state} or {'lost'}.
--! include campaign-common.inc.lua
do
  local bad = wrong_types()
  if bad then return bad end
end
local P, count, optin, now = ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1', ARGV[5]
local hold = tonumber(ARGV[9])
if not count or not hold then
  return redis.error_reply('campaign-take: bad count or hold')
end
if not leased() then return {'lost'} end
local st = redis.call('HGET', KEYS[1], 'state')
if st ~= 'running' then return {'state', st or ''} end
if ARGV[6] == '1' and redis.call('EXISTS', KEYS[4]) == 1 then
  local u = redis_ms() + hold
  local old = tonumber(redis.call('HGET', KEYS[1], 'held_until') or '0') or 0
  redis.call('SUNIONSTORE', KEYS[7], KEYS[7], KEYS[4])
  redis.call('DEL', KEYS[4])
  if u > old then redis.call('HSET', KEYS[1], 'held_until', u) end
elseif ARGV[6] == '2' and redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('SUNIONSTORE', KEYS[3], KEYS[3], KEYS[4])
  redis.call('DEL', KEYS[4])
end
local held = release_held()
local ids = redis.call('SPOP', KEYS[3], count)
local out = {'ok', #ids, 0, held}
for _, id in ipairs(ids) do
  local mid = '<' .. redis.sha1hex(ARGV[7] .. '\n' .. id) ..
    '.campaign@' .. ARGV[8] .. '>'
  if redis.call('HGET', KEYS[2], id) ~= 'queued' then
  elseif redis.call('EXISTS', P .. ':sent:' .. mid) == 1 then
    redis.call('HSET', KEYS[2], id, 'sent')
    add('queued', -1)
    add('sent', 1)
  else
    local prof, p = profile(P .. ':client:' .. id)
    if not prof then prof, p = {}, {} end
    local oc = verdict(p, optin)
    if oc then
      redis.call('HSET', KEYS[2], id, oc)
      add('queued', -1)
      add(skipfield(oc), 1)
    else
      redis.call('SADD', KEYS[4], id)
      out[#out + 1] = id
      out[#out + 1] = prof
    end
  end
end
flush()
out[3] = complete(now)
return out
