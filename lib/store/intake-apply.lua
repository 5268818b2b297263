#!lua
-- Apply one batch. KEYS[1] stream; ARGV: group, prefix, now_ms, dedup ttl
-- ms, consumer, lowest and highest entry id of the batch, then one record
-- per entry:
--   sid 'a[i][U|S][j]' client [jclient] [event_id] [addr] counts (field
--       value)*nf (key due body | prefix "")*na
--                                     counts: nf and na, two bytes each
--                                     apply: schedule, or cancel by key
--                                     prefix, in the job hash
--                                     P:job:<jclient> (jclient: with 'j',
--                                     else the client); 'i': the event has
--                                     an id; 'U' / 'S' adds addr (or the
--                                     profile's email, when "") to /
--                                     removes it from P:suppressed
--                                     (consent.unsubscribed / subscribed);
--                                     'S' also sets P:subscribed[client] =
--                                     now_ms: unsubscribe links made
--                                     before it are refused
--                                     (unsubscribe.lua).
--                                     Every argument an event does not
--                                     need is left out: each costs a Lua
--                                     string.
--   sid 'i'|'p' reason has_payload payload nf (field value)*nf
--                                     dead letter (invalid | poison); the
--                                     fields are the entry's own when it had
--                                     no event field
--   sid 'e' reason                    could not apply: keep the reason in
--                                     P:lasterr, leave pending
--   sid 'k'                           acknowledge only (entry deleted)
-- An entry no longer pending for this consumer (another consumer claimed
-- it) is skipped: one XPENDING over the batch's id range says which are
-- still ours, and one XACK per 500 entries acknowledges them. Schedules are
-- collected and written with one ZADD per 1000 jobs at the end (a cancel
-- later in the batch takes them back out); the per-client event counters
-- (hash P:client-events, field = client) with one HMGET and one HSET per 500
-- clients. The shared keys' types are checked once; the profile's when it
-- is written to, the job hash's by its first write (pcall). Returns
-- {applied, duplicate, invalid, poison, earliest due or -1, skipped}.
local stream, group = KEYS[1], ARGV[1]
local P, now, ttl, me = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local jobs, JP = P .. ':jobs', P .. ':job:'
local dead, lasterr, stats = P .. ':dead', P .. ':lasterr', P .. ':stats'
local supk, evk = P .. ':suppressed', P .. ':client-events'
local subk = P .. ':subscribed'
local tc = {}
local function kt(k)
  local t = tc[k]
  if not t then t = redis.call('TYPE', k).ok; tc[k] = t end
  return t
end
local want = {[jobs] = 'zset', [dead] = 'stream',
  [lasterr] = 'hash', [stats] = 'hash', [supk] = 'set', [evk] = 'hash',
  [subk] = 'hash'}
for k, t in pairs(want) do
  local have = kt(k)
  if have ~= 'none' and have ~= t then
    return redis.error_reply('key ' .. k .. ' is a ' .. have .. ', not a ' .. t)
  end
end
local mine, cap = {}, 4096
local pl = redis.call('XPENDING', stream, group, ARGV[6], ARGV[7], cap, me)
for _, e in ipairs(pl) do mine[e[1]] = true end
local function ours(sid)
  if mine[sid] then return true end
  if #pl < cap then return false end
  return #redis.call('XPENDING', stream, group, sid, sid, 1, me) == 1
end
local AOP = {}
for _, d in ipairs({'', 'i'}) do
  for _, u in ipairs({'', 'U', 'S'}) do
    AOP['a' .. d .. u] = {d ~= '', u, false}
    AOP['a' .. d .. u .. 'j'] = {d ~= '', u, true}
  end
end
local cnt = {0, 0, 0, 0}
local stale, earliest = 0, -1
local acked, pz, evc, evn = {}, {}, {}, {}
local i = 8
while i <= #ARGV do
  local sid, op = ARGV[i], ARGV[i + 1]
  i = i + 2
  if op == 'e' then
    redis.call('HSET', lasterr, sid, ARGV[i])
    i = i + 1
  elseif AOP[op] then
    local f = AOP[op]
    local client = ARGV[i]
    local jc, eid, sup, addr = client, '', f[2], ''
    i = i + 1
    if f[3] then jc = ARGV[i]; i = i + 1 end
    if f[1] then eid = ARGV[i]; i = i + 1 end
    if sup ~= '' then addr = ARGV[i]; i = i + 1 end
    local c1, c2, c3, c4 = string.byte(ARGV[i], 1, 4)
    local nf, na = c1 * 256 + c2, c3 * 256 + c4
    local fs = i + 1
    local as = fs + 2 * nf
    i = as
    for a = 1, na do
      if ARGV[i + 1] == '' then i = i + 2 else i = i + 3 end
    end
    local ck = P .. ':client:' .. client
    local jh = JP .. jc
    if not ours(sid) then
      stale = stale + 1
    elseif eid ~= '' and redis.call('EXISTS', P .. ':seen:' .. eid) == 1 then
      acked[#acked + 1] = sid
      cnt[2] = cnt[2] + 1
    else
      local bad, r = nil, nil
      if nf > 0 or sup ~= '' then
        local t = kt(ck)
        if t ~= 'none' and t ~= 'hash' then bad = ck end
      end
      local b, hk = as, nil
      if not bad and na > 0 then
        if ARGV[b + 1] ~= '' then
          r = redis.pcall('HSET', jh, ARGV[b], ARGV[b + 2])
          if type(r) == 'number' then pz[ARGV[b]] = ARGV[b + 1] end
          b = b + 3
          na = na - 1
        else
          r = redis.pcall('HKEYS', jh)
          hk = r
        end
        if type(r) == 'table' and r.err then bad = jh end
      end
      if bad then
        redis.call('HSET', lasterr, sid, 'cannot apply: key ' .. bad .. ' is a ' .. redis.call('TYPE', bad).ok)
      else
        acked[#acked + 1] = sid
        if eid ~= '' then
          redis.call('SET', P .. ':seen:' .. eid, sid, 'PX', ttl)
        end
        if nf > 0 then
          redis.call('HSET', ck, 'updated', now, unpack(ARGV, fs, fs + 2 * nf - 1))
        end
        if sup ~= '' then
          if addr == '' then addr = redis.call('HGET', ck, 'email') or '' end
          if addr ~= '' then
            if sup == 'U' then redis.call('SADD', supk, string.lower(addr))
            else redis.call('SREM', supk, string.lower(addr)) end
          end
          if sup == 'S' then redis.call('HSET', subk, client, now) end
        end
        for a = 1, na do
          local key, due = ARGV[b], ARGV[b + 1]
          if due ~= '' then
            redis.call('HSET', jh, key, ARGV[b + 2])
            pz[key] = due
            b = b + 3
          else
            b = b + 2
            local keys = hk or redis.call('HKEYS', jh)
            hk = nil
            local n = #key
            for _, m in ipairs(keys) do
              if string.sub(m, 1, n) == key then
                redis.call('ZREM', jobs, m)
                redis.call('HDEL', jh, m)
                pz[m] = nil
              end
            end
          end
        end
        if not evc[client] then evn[#evn + 1] = client end
        evc[client] = (evc[client] or 0) + 1
        cnt[1] = cnt[1] + 1
      end
    end
  else
    local fs, nf, reason, hasp, payload = i, 0, '', '0', ''
    if op ~= 'k' then
      reason, hasp, payload = ARGV[i], ARGV[i + 1], ARGV[i + 2]
      nf = tonumber(ARGV[i + 3])
      fs = i + 4
      i = fs + 2 * nf
    end
    if not ours(sid) then
      stale = stale + 1
    else
      acked[#acked + 1] = sid
      if op ~= 'k' then
        local f = {'kind', 'event', 'reason', reason, 'source', sid,
          'stream', stream, 'at', now}
        if hasp == '1' then
          f[#f + 1] = 'payload'
          f[#f + 1] = payload
        end
        for j = 0, nf - 1 do
          f[#f + 1] = 'field:' .. ARGV[fs + 2 * j]
          f[#f + 1] = ARGV[fs + 2 * j + 1]
        end
        redis.call('XADD', dead, '*', unpack(f))
        if op == 'i' then cnt[3] = cnt[3] + 1 else cnt[4] = cnt[4] + 1 end
      end
    end
  end
end
local z = {}
for key, due in pairs(pz) do
  z[#z + 1] = due
  z[#z + 1] = key
  local d = tonumber(due)
  if earliest < 0 or d < earliest then earliest = d end
end
for j = 1, #z, 1000 do
  redis.call('ZADD', jobs, unpack(z, j, math.min(j + 999, #z)))
end
for j = 1, #evn, 500 do
  local e = math.min(j + 499, #evn)
  local old = redis.call('HMGET', evk, unpack(evn, j, e))
  local kv = {}
  for k = j, e do
    kv[#kv + 1] = evn[k]
    kv[#kv + 1] = (tonumber(old[k - j + 1]) or 0) + evc[evn[k]]
  end
  redis.call('HSET', evk, unpack(kv))
end
for j = 1, #acked, 500 do
  redis.call('XACK', stream, group, unpack(acked, j, math.min(j + 499, #acked)))
end
if #acked > 0 and redis.call('EXISTS', lasterr) == 1 then
  for j = 1, #acked, 500 do
    redis.call('HDEL', lasterr, unpack(acked, j, math.min(j + 499, #acked)))
  end
end
local names = {'events_applied', 'events_duplicate', 'events_invalid',
  'events_poison'}
for j = 1, 4 do
  if cnt[j] > 0 then redis.call('HINCRBY', stats, names[j], cnt[j]) end
end
return {cnt[1], cnt[2], cnt[3], cnt[4], earliest, stale}
