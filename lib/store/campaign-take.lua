-- Take recipients that are queued but nobody sends: SPOP from the pending
-- set into the in-flight set (so each is taken once). With restore = 1
-- first move the in-flight set back into the pending set: the lease is
-- ours, so what is in flight there was left by an earlier runner that died
-- or stopped. One whose P:sent marker exists went out (the delivery agent
-- sets it even when the runner died before recording it) and is recorded
-- as sent; for the others address, suppression and consent are checked
-- again. ARGV: token, prefix, count, opt-in, now, restore, campaign name,
-- from domain. Returns {'ok', popped, completed, id, profile, ...},
-- {'state', state} or {'lost'}.
--! include campaign-common.inc.lua
local P, count, optin, now = ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1', ARGV[5]
if not leased() then return {'lost'} end
local st = redis.call('HGET', KEYS[1], 'state')
if st ~= 'running' then return {'state', st or ''} end
if ARGV[6] == '1' and redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('SUNIONSTORE', KEYS[3], KEYS[3], KEYS[4])
  redis.call('DEL', KEYS[4])
end
local ids = redis.call('SPOP', KEYS[3], count)
local out = {'ok', #ids, 0}
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
