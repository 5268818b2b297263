#!lua
-- Apply one batch. KEYS[1] stream; ARGV: group, prefix, now_ms, dedup ttl
-- ms, consumer, lowest and highest entry id of the batch, order window ms
-- (0: no ordering), timeline cap (console.timeline; 0: none kept) and TTL
-- (s), then one record per entry:
--   sid 'a[i][U|S][j][r|R][t]' client [jclient] [event_id] [addr]
--       [report entry] [timeline entry] counts (field value)*nf (key due
--       body | prefix "")*na
--                                     counts: nf and na, two bytes each,
--                                     then the event's order time (its
--                                     at, but not after its arrival;
--                                     epoch ms) in decimal
--                                     apply: schedule, or cancel by key
--                                     prefix, in the job hash
--                                     P:job:<jclient> (jclient: with 'j',
--                                     else the client); 'i': the event has
--                                     an id; 'U' / 'S' adds addr (or the
--                                     profile's email, when "") to /
--                                     removes it from P:suppressed
--                                     (consent.unsubscribed / subscribed);
--                                     a cancel also drops the held digest
--                                     items of its prefix (P:held-by:<jc>,
--                                     P:held:<rcpt>, P:held-to);
--                                     'S' also sets P:subscribed[client] =
--                                     now_ms: unsubscribe links made
--                                     before it are refused
--                                     (unsubscribe.lua).
--                                     'r' / 'R': count the event for the
--                                     monthly report: its entry for
--                                     P:report-log (report-fold.inc.lua),
--                                     built by sukid ('R': without the
--                                     manager, read from the profile once
--                                     the event is applied).
--                                     't': the event's entry for the
--                                     client's timeline (P:timeline:<c>,
--                                     keys.h), compact JSON built by
--                                     sukid, pushed once it is applied.
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
-- clients; the timeline entries with one LPUSH, LTRIM and EXPIRE per
-- client (pcall: a timeline of a wrong type is lost, never the batch). The
-- shared keys' types are checked once; the profile's when it is written
-- to, the job hash's by its first write (pcall).
--
-- Order (docs/ARCHITECTURE.md, "Events out of order"): the event's at
-- decides, not its arrival. A profile field is written only when at is not
-- older than the at of the event that last set it (kept in the profile as
-- 'at:<field>'); a schedule only when at is not older than the event of
-- the job it replaces nor than the last cancel of its subject or its rule
-- for the client (P:at:<key prefix>, expiring after the order window); a
-- cancel takes out only jobs whose triggering event is not newer than it. Returns {applied, duplicate, invalid, poison, earliest due or -1,
-- skipped, outdated (applied events with a part overruled by a newer
-- event)}.
local stream, group = KEYS[1], ARGV[1]
local P, now, ttl, me = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ow = tonumber(ARGV[8])
local tlcap, tlttl = tonumber(ARGV[9]) or 0, ARGV[10]
local jobs, JP, AP = P .. ':jobs', P .. ':job:', P .. ':at:'
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
    for _, r in ipairs({'', 'r', 'R'}) do
      for _, t in ipairs({'', 't'}) do
        AOP['a' .. d .. u .. r .. t] = {d ~= '', u, false, r, t ~= ''}
        AOP['a' .. d .. u .. 'j' .. r .. t] = {d ~= '', u, true, r, t ~= ''}
      end
    end
  end
end
-- report_fold and hmget
--! include report-fold.inc.lua
-- RL: the batch's report entries, pushed with one RPUSH per 1000; once
-- the log holds FOLD_AT or more, the oldest FOLD_AT are folded.
local RL, FOLD_AT = {}, 4096
local function hset(k, kv)
  for j = 1, #kv, 1000 do
    redis.call('HSET', k, unpack(kv, j, math.min(j + 999, #kv)))
  end
end
-- The triggering event's order time in a stored job body: "o" right after
-- "d" when it is not the event's at ({"d":…,"o":…} / {"d":…,"e":{"t":…,
-- "a":at,…}}); nil for a body without an event (cancelled as before).
local function body_at(body)
  local o = string.match(body, '^{"d":%-?%d+,"o":(%-?%d+)')
  if o then return tonumber(o) end
  return tonumber(string.match(body, '"e":{"t":"[^"]*","a":(%-?%d+)'))
end
-- Job-key prefix k -> order time of the newest event that cancelled it
-- (P:at:<k>): every marker the batch may need is read with
-- one MGET per 500 up front (a key of another type reads as none); AD
-- holds the ones to write, each with one SET PX at the end.
local AM, AD = {}, {}
-- "rule:client:subject:" of a job key ('' when it has fewer parts), and
-- of the schedule at ARGV[j], with "rule:client:", from the read-ahead.
local function sprefix(key)
  local p = string.find(key, ':', 1, true)
  p = p and string.find(key, ':', p + 1, true)
  p = p and string.find(key, ':', p + 1, true)
  return p and string.sub(key, 1, p) or ''
end
local SPX, RPX, NOSK = {}, {}, {}
do
  local q, qs = {}, {}
  local function need(k)
    if k ~= '' and not qs[k] then qs[k] = true; q[#q + 1] = k end
  end
  local j = 11
  while j <= #ARGV do
    local op = ARGV[j + 1]
    j = j + 2
    if op == 'e' then
      j = j + 1
    elseif AOP[op] then
      local f = AOP[op]
      j = j + 1
      if f[3] then j = j + 1 end
      if f[1] then j = j + 1 end
      if f[2] ~= '' then j = j + 1 end
      if f[4] ~= '' then j = j + 1 end
      if f[5] then j = j + 1 end
      local c1, c2, c3, c4 = string.byte(ARGV[j], 1, 4)
      local na = c3 * 256 + c4
      j = j + 1 + 2 * (c1 * 256 + c2)
      for a = 1, ow > 0 and na or 0 do
        if ARGV[j + 1] ~= '' then
          local key = ARGV[j]
          local p = string.find(key, ':', 1, true)
          p = p and string.find(key, ':', p + 1, true)
          local q3 = p and string.find(key, ':', p + 1, true)
          local rp = p and string.sub(key, 1, p) or ''
          local sp = q3 and string.sub(key, 1, q3) or ''
          SPX[j], RPX[j] = sp, rp
          need(sp)
          need(rp)
          j = j + 3
        else
          need(ARGV[j])
          j = j + 2
        end
      end
      if ow == 0 then
        for a = 1, na do
          if ARGV[j + 1] ~= '' then j = j + 3 else j = j + 2 end
        end
      end
    elseif op ~= 'k' then
      j = j + 4 + 2 * tonumber(ARGV[j + 3])
    end
  end
  for j = 1, #q, 500 do
    local e = math.min(j + 499, #q)
    local ks = {}
    for k = j, e do ks[#ks + 1] = AP .. q[k] end
    local r = redis.call('MGET', unpack(ks))
    for k = j, e do
      local v = tonumber(r[k - j + 1])
      if v then AM[q[k]] = v end
    end
  end
end
-- Marker k moves up to this event's order time.
local function raise(k, at, ats)
  if ow > 0 and k ~= '' and at > (AM[k] or at - 1) then
    AM[k] = at
    AD[k] = ats
  end
end
local cnt = {0, 0, 0, 0}
local stale, earliest, outdated = 0, -1, 0
local acked, pz, evc, evn = {}, {}, {}, {}
-- TL[client]: the batch's timeline entries of the client, oldest first
-- (the order they applied in); TLN: the clients in first-seen order
local TL, TLN = {}, {}
local i = 11
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
    local re = nil
    if f[4] ~= '' then re = ARGV[i]; i = i + 1 end
    local tle = nil
    if f[5] then tle = ARGV[i]; i = i + 1 end
    local cs = ARGV[i]
    local c1, c2, c3, c4 = string.byte(cs, 1, 4)
    local nf, na = c1 * 256 + c2, c3 * 256 + c4
    local ats = string.sub(cs, 5)
    local at = tonumber(ats) or 0
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
      -- What newer events already decided: pm[k] is the order time of
      -- profile field k's last writer (psup: of the consent), am (AM) the
      -- cancel markers; sk[a]: action a is a schedule to drop.
      local pm, psup, am, sk = nil, nil, nil, NOSK
      if ow > 0 and not bad and (nf > 0 or (sup ~= '' and addr == '')) then
        local q = {}
        for k = 0, nf - 1 do q[#q + 1] = 'at:' .. ARGV[fs + 2 * k] end
        if sup ~= '' and addr == '' then q[#q + 1] = 'at:consent' end
        r = hmget(ck, q)
        if r.err then bad = ck else
          pm = {}
          for k = 1, nf do pm[k] = tonumber(r[k]) end
          if sup ~= '' and addr == '' then psup = tonumber(r[nf + 1]) end
        end
      end
      -- The job hash's type is probed by the entry's first command on it,
      -- a pcall that fails without effect: the first schedule's write (pa,
      -- pr: its reply) or the first cancel's read (hk). With ordering a
      -- schedule is dropped when its subject or rule was cancelled by a
      -- newer event (sk), and written with HSETNX: a job already there is
      -- replaced only when its event is not newer.
      local b, hk, pa, pr = as, nil, 0, nil
      if not bad and na > 0 then
        local a = 1
        if ow > 0 then
          am, sk = AM, {}
          local x = as
          for k = 1, na do
            if ARGV[x + 1] ~= '' then
              local sp, rp = SPX[x], RPX[x]
              sk[k] = at < (am[sp] or at) or at < (am[rp] or at)
              x = x + 3
            else
              x = x + 2
            end
          end
          while a <= na and sk[a] do
            b = b + 3
            a = a + 1
          end
        end
        if a <= na then
          if ARGV[b + 1] ~= '' then
            r = redis.pcall(am and 'HSETNX' or 'HSET', jh, ARGV[b], ARGV[b + 2])
            pa, pr = a, r
          else
            r = redis.pcall(am and 'HGETALL' or 'HKEYS', jh)
            hk = r
          end
          if type(r) == 'table' and r.err then bad = jh end
        end
      end
      if bad then
        redis.call('HSET', lasterr, sid, 'cannot apply: key ' .. bad .. ' is a ' .. redis.call('TYPE', bad).ok)
      else
        local drop = false
        acked[#acked + 1] = sid
        if eid ~= '' then
          redis.call('SET', P .. ':seen:' .. eid, sid, 'PX', ttl)
        end
        if nf > 0 then
          local kv = {'updated', now}
          for k = 0, nf - 1 do
            if pm and at < (pm[k + 1] or at) then
              drop = true
            else
              kv[#kv + 1] = ARGV[fs + 2 * k]
              kv[#kv + 1] = ARGV[fs + 2 * k + 1]
              if pm then
                kv[#kv + 1] = 'at:' .. ARGV[fs + 2 * k]
                kv[#kv + 1] = ats
              end
            end
          end
          if #kv > 2 then hset(ck, kv) end
        end
        local unsub = false
        if sup ~= '' and psup and at < psup then
          drop = true
        elseif sup ~= '' then
          if addr == '' then addr = redis.call('HGET', ck, 'email') or '' end
          if addr ~= '' then
            if sup == 'U' then
              unsub = redis.call('SADD', supk, string.lower(addr)) == 1
            else redis.call('SREM', supk, string.lower(addr)) end
          end
          if sup == 'S' then redis.call('HSET', subk, client, now) end
        end
        -- nk: subjects where this event's cancel left a newer event's
        -- job (a renewal restating them): its schedules there are older
        -- too, whichever slots they name
        local nk = nil
        b = as
        for a = 1, na do
          local key, due = ARGV[b], ARGV[b + 1]
          if due ~= '' then
            if sk[a] or (nk and nk[SPX[b]]) then
              drop = true
            elseif am then
              local set = pr
              if a ~= pa then set = redis.call('HSETNX', jh, key, ARGV[b + 2]) end
              local ja = set == 0 and body_at(redis.call('HGET', jh, key) or '')
              if ja and ja > at then
                drop = true -- the job there has a newer event
              else
                if set == 0 then redis.call('HSET', jh, key, ARGV[b + 2]) end
                pz[key] = due
              end
            else
              if a ~= pa then redis.call('HSET', jh, key, ARGV[b + 2]) end
              pz[key] = due
            end
            b = b + 3
          else
            b = b + 2
            local keys = hk or redis.call(am and 'HGETALL' or 'HKEYS', jh)
            hk = nil
            local n, st = #key, am and 2 or 1
            for x = 1, #keys, st do
              local m = keys[x]
              if string.sub(m, 1, n) == key then
                local ja = am and body_at(keys[x + 1])
                if ja and ja > at then
                  drop = true -- triggered by a newer event: it stays
                  nk = nk or {}
                  nk[sprefix(m)] = true
                else
                  redis.call('ZREM', jobs, m)
                  redis.call('HDEL', jh, m)
                  pz[m] = nil
                end
              end
            end
            -- held digest items of that prefix go too (DESIGN: an unless
            -- before the digest drops the item); pcall: a key of a wrong
            -- type must not fail the batch after its first write
            local hb = P .. ':held-by:' .. jc
            local hf = redis.pcall('HKEYS', hb)
            if type(hf) == 'table' then
              for x = 1, #hf do
                local f = hf[x]
                if string.sub(f, 1, n) == key then
                  local nl = string.find(f, '\n', 1, true)
                  if nl then
                    local to = string.sub(f, nl + 1)
                    local hk = P .. ':held:' .. to
                    redis.pcall('HDEL', hk, string.sub(f, 1, nl - 1))
                    if redis.pcall('EXISTS', hk) == 0 then
                      redis.pcall('SREM', P .. ':held-to', to)
                    end
                  end
                  redis.pcall('HDEL', hb, f)
                end
              end
            end
            raise(key, at, ats)
          end
        end
        if drop then outdated = outdated + 1 end
        if re then
          -- 'R': the manager the profile has now (this event's own field
          -- written above) goes after the type, before any figure
          if f[4] == 'R' then
            local m = redis.pcall('HGET', ck, 'manager')
            m = ' ' .. (type(m) == 'string' and m or '')
            local nl = string.find(re, '\n', 1, true)
            re = nl and string.sub(re, 1, nl - 1) .. m .. string.sub(re, nl) or re .. m
          end
          RL[#RL + 1] = re
          if unsub then
            RL[#RL + 1] = string.gsub(re, '^(%S+) e:%S+ ([^\n]*).*$', '%1 unsub %2')
          end
        end
        if not evc[client] then evn[#evn + 1] = client end
        evc[client] = (evc[client] or 0) + 1
        if tle and tlcap > 0 then
          local l = TL[client]
          if not l then l = {}; TL[client] = l; TLN[#TLN + 1] = client end
          l[#l + 1] = tle
        end
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
for k, v in pairs(AD) do
  redis.call('SET', AP .. k, v, 'PX', ow)
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
-- pcall: a log of a wrong type loses the batch's counters, never the batch
local rl = 0
for j = 1, #RL, 1000 do
  rl = redis.pcall('RPUSH', P .. ':report-log', unpack(RL, j, math.min(j + 999, #RL)))
end
if type(rl) == 'number' and rl >= FOLD_AT then report_fold(P, now, FOLD_AT) end
-- Only the newest tlcap of a client's entries are pushed (the rest would
-- be trimmed at once); LPUSH of them oldest first leaves the newest at the
-- head. A key of a wrong type fails the LPUSH without effect: its LTRIM
-- and EXPIRE are not sent (EXPIRE would take any type).
for _, c in ipairs(TLN) do
  local l, k = TL[c], P .. ':timeline:' .. c
  local r = redis.pcall('LPUSH', k, unpack(l, math.max(1, #l - tlcap + 1)))
  if type(r) == 'number' then
    if r > tlcap then redis.pcall('LTRIM', k, 0, tlcap - 1) end
    redis.pcall('EXPIRE', k, tlttl)
  end
end
for j = 1, #acked, 500 do
  redis.call('XACK', stream, group, unpack(acked, j, math.min(j + 499, #acked)))
end
if #acked > 0 and redis.call('EXISTS', lasterr) == 1 then
  for j = 1, #acked, 500 do
    redis.call('HDEL', lasterr, unpack(acked, j, math.min(j + 499, #acked)))
  end
end
-- pcall: HINCRBY fails on a field that holds no integer, and by now the
-- batch is applied and acknowledged; such a counter loses this batch's
-- count, the batch stands (P:stats' type was checked up front).
local names = {'events_applied', 'events_duplicate', 'events_invalid',
  'events_poison'}
for j = 1, 4 do
  if cnt[j] > 0 then redis.pcall('HINCRBY', stats, names[j], cnt[j]) end
end
if outdated > 0 then
  redis.pcall('HINCRBY', stats, 'events_outdated', outdated)
end
return {cnt[1], cnt[2], cnt[3], cnt[4], earliest, stale, outdated}
