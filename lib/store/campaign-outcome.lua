-- Record outcomes. ARGV: token, sent ttl, now, error_min, threshold, the
-- report counters' month hash (P:report:<month>, '' without reports),
-- then groups of (client, outcome, sent marker key or '', the marker's
-- value (the campaign's record, lib/store/keys.h), address to suppress or
-- '', report field "sent_camp <manager>" or ''). Only entries still
-- `queued` change the ledger and counters (and a sent one the report's,
-- once per recipient: a pcall'd HMGET and HSET of the month hash at the
-- end, so a hash of the wrong type loses only that figure).
-- Pauses the campaign when the error rate since its last start passes the
-- threshold. Returns {completed, paused}.
--! include campaign-common.inc.lua
do
  local bad = wrong_types()
  if bad then return bad end
end
local ttl, now = ARGV[2], ARGV[3]
local emin, thr = tonumber(ARGV[4]), tonumber(ARGV[5])
local rk, rc, rf = ARGV[6], {}, {}
for i = 7, #ARGV, 6 do
  local id, oc, sk, sv, sa =
    ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  if redis.call('HGET', KEYS[2], id) == 'queued' then
    redis.call('HSET', KEYS[2], id, oc)
    add('queued', -1)
    if oc == 'sent' then
      add('sent', 1)
      add('err_sent', 1)
      local f = ARGV[i + 5]
      if rk ~= '' and f ~= '' then
        if not rc[f] then rf[#rf + 1] = f end
        rc[f] = (rc[f] or 0) + 1
      end
    elseif string.sub(oc, 1, 7) == 'failed:' then
      add('failed', 1)
      add('err_failed', 1)
    else
      add(skipfield(oc), 1)
    end
  end
  redis.call('SREM', KEYS[4], id)
  redis.call('SREM', KEYS[3], id)
  redis.call('SREM', KEYS[7], id)
  if sk ~= '' then redis.call('SET', sk, sv ~= '' and sv or '1', 'EX', ttl) end
  if sa ~= '' then redis.call('SADD', KEYS[5], sa) end
end
if #rf > 0 then
  local old = redis.pcall('HMGET', rk, unpack(rf))
  if not old.err then
    local kv = {}
    for x = 1, #rf do
      kv[#kv + 1] = rf[x]
      kv[#kv + 1] = string.format('%.0f', (tonumber(old[x]) or 0) + rc[rf[x]])
    end
    redis.pcall('HSET', rk, unpack(kv))
    redis.pcall('EXPIRE', rk, 400 * 86400)
  end
end
flush()
local h = redis.call('HMGET', KEYS[1], 'state', 'err_sent', 'err_failed')
local paused = 0
if h[1] == 'running' then
  local es, ef = tonumber(h[2] or '0'), tonumber(h[3] or '0')
  local tot = es + ef
  if tot > 0 and tot >= emin and ef / tot > thr then
    redis.call('HSET', KEYS[1], 'state', 'paused', 'reason',
      string.format('error rate %d%% (%d failed of %d since the last start) passed campaigns.error_threshold %d%%',
        math.floor(100 * ef / tot + 0.5), ef, tot,
        math.floor(100 * thr + 0.5)))
    paused = 1
  end
end
return {complete(now), paused}
