-- Report counters (reports.monthly): intake-apply appends one entry per
-- counted event to the list P:report-log in the event's own step, and
-- report_fold(P, now, n) folds the oldest n entries (all: n = 0) into
-- the month hashes P:report:<YYYY-MM> (fields "<counter> <manager>") and
-- trims them off, in one step. Writing each batch's ~1.3 fields per event
-- into the month hash cost Redis a fifth more per event; folding
-- thousands of entries at once touches each field once. Whoever reads the
-- counters folds first (report-plan, report-fold for sukictl), so no
-- reader sees a count short.
-- An entry is "<YYYY-MM> e:<type> <manager>" (its events counter), or
-- "<YYYY-MM> unsub <manager>", and for deal.* "\n<amount in centavos>"
-- (or "\n"), for complaint.* "\n<ticket>\n<order time ms>\n<client>".
-- Complaints' tickets live in hashes of 200-day generations,
-- P:report-tickets:<gen> (gen = now / 200 days), field
-- "<client>\n<ticket>", value "o\nomonth\nomgr\nr\nrmonth\nrmgr": read
-- from this generation and the one before, written to this one. The
-- writes are pcalls, checked before nothing: a key of a wrong type loses
-- its counters, never the entries of the others. Returns the entries
-- folded.
-- HMGET of any number of fields, 500 per call (unpack's limit), as a
-- pcall: a wrong-typed key answers an error table and writes nothing
-- (intake-apply.lua reads profiles with it too).
local function hmget(k, f)
  local out = {}
  for j = 1, #f, 500 do
    local r = redis.pcall('HMGET', k, unpack(f, j, math.min(j + 499, #f)))
    if r.err then return r end
    for x = 1, #r do out[#out + 1] = r[x] end
  end
  return out
end
local function report_fold(P, now, n)
  local LK, RP, RTP = P .. ':report-log', P .. ':report:', P .. ':report-tickets:'
  if redis.call('TYPE', LK).ok ~= 'list' then return 0 end
  local es = redis.call('LRANGE', LK, 0, n - 1)
  local rttl = 400 * 86400
  local rgen = math.floor(tonumber(now) / (200 * 86400000))
  -- AG[entry]: the plain entries' counts (most are), split once per
  -- distinct entry at the end; RC[month][field] the other increments
  local AG, RC, TK, TD = {}, {}, {}, {}
  local function radd(mon, mgr, c, v)
    local t = RC[mon]
    if not t then t = {}; RC[mon] = t end
    local f = c .. ' ' .. mgr
    t[f] = (t[f] or 0) + v
  end
  -- A complaint's open or resolve for manager mgr in month mon at order
  -- time at; tk its ticket's key (nil: no ticket, counted only). The
  -- ticket keeps both ends, so the time to resolve (counted in the
  -- resolve's month) and "still open" (the open's) come out the same
  -- whichever arrives first; a second open or resolve of the same ticket
  -- (another event id) counts as an event only.
  local function rcomplaint(open, mon, mgr, tk, at)
    if not tk then
      radd(mon, mgr, open and 'c_opened' or 'c_resolved', 1)
      return
    end
    local t = TK[tk]
    if open then
      if t.o then return end
      t.o, t.om, t.og = at, mon, mgr
      radd(mon, mgr, 'c_opened', 1)
      if t.r then
        radd(t.rm, t.rg, 'c_ttr_ms', math.max(0, t.r - at))
        radd(t.rm, t.rg, 'c_ttr_n', 1)
      else
        radd(mon, mgr, 'c_open', 1)
      end
    else
      if t.r then return end
      t.r, t.rm, t.rg = at, mon, mgr
      radd(mon, mgr, 'c_resolved', 1)
      if t.o then
        radd(mon, mgr, 'c_ttr_ms', math.max(0, at - t.o))
        radd(mon, mgr, 'c_ttr_n', 1)
        radd(t.om, t.og, 'c_open', -1)
      end
    end
    TD[tk] = t
  end
  -- the entries with a figure, parsed once: {month, type, manager, rest}
  local X, tq = {}, {}
  for x = 1, #es do
    local e = es[x]
    local nl = string.find(e, '\n', 1, true)
    if not nl then
      AG[e] = (AG[e] or 0) + 1
    else
      -- plain finds, no patterns: this runs for every deal and complaint
      local head = string.sub(e, 1, nl - 1)
      AG[head] = (AG[head] or 0) + 1
      local sp = string.sub(head, 8, 10) == ' e:' and string.find(head, ' ', 11, true)
      if sp then
        local ty = string.sub(head, 11, sp - 1)
        local p = {string.sub(head, 1, 7), ty, string.sub(head, sp + 1),
          string.sub(e, nl + 1)}
        if string.sub(ty, 1, 10) == 'complaint.' then
          local x = p[4]
          local n1 = string.find(x, '\n', 1, true)
          local n2 = n1 and string.find(x, '\n', n1 + 1, true)
          local at = n2 and tonumber(string.sub(x, n1 + 1, n2 - 1))
          if at then
            local tk = string.sub(x, 1, n1 - 1)
            p[4], p[5] = tk ~= '' and string.sub(x, n2 + 1) .. '\n' .. tk or nil, at
            if p[4] and TK[p[4]] == nil then TK[p[4]] = false; tq[#tq + 1] = p[4] end
            X[#X + 1] = p
          end
        else
          X[#X + 1] = p
        end
      end
    end
  end
  if #tq > 0 then
    local cur = hmget(RTP .. rgen, tq)
    local prev = hmget(RTP .. (rgen - 1), tq)
    for k = 1, #tq do
      local v = (not cur.err and cur[k]) or (not prev.err and prev[k]) or ''
      local o, om, og, rr, rm, rg = string.match(v,
        '^(%d*)\n(%d*%-?%d*)\n([^\n]*)\n(%d*)\n(%d*%-?%d*)\n([^\n]*)$')
      local t = {}
      if o and o ~= '' then t.o, t.om, t.og = tonumber(o), om, og end
      if rr and rr ~= '' then t.r, t.rm, t.rg = tonumber(rr), rm, rg end
      TK[tq[k]] = t
    end
  end
  -- in the order they were applied: a ticket's ends pair up as they came
  for _, p in ipairs(X) do
    local mon, ty, mgr = p[1], p[2], p[3]
    if ty == 'deal.won' or ty == 'deal.lost' then
      local w = ty == 'deal.won' and 'won' or 'lost'
      radd(mon, mgr, w, 1)
      if p[4] ~= '' then radd(mon, mgr, w .. '_cents', tonumber(p[4]) or 0) end
    elseif p[5] then
      rcomplaint(ty == 'complaint.opened', mon, mgr, p[4], p[5])
    end
  end
  for e, v in pairs(AG) do
    if string.byte(e, 8) == 32 then -- "YYYY-MM " (sukid wrote it)
      local mon = string.sub(e, 1, 7)
      local t = RC[mon]
      if not t then t = {}; RC[mon] = t end
      local f = string.sub(e, 9)
      t[f] = (t[f] or 0) + v
    end
  end
  for mon, t in pairs(RC) do
    local k, fs = RP .. mon, {}
    for f in pairs(t) do fs[#fs + 1] = f end
    local old = hmget(k, fs)
    if not old.err then
      local kv = {}
      for x = 1, #fs do
        kv[#kv + 1] = fs[x]
        -- as a decimal string: Redis would format a number with %.17g
        kv[#kv + 1] = string.format('%d', (tonumber(old[x]) or 0) + t[fs[x]])
      end
      for j = 1, #kv, 1000 do
        redis.pcall('HSET', k, unpack(kv, j, math.min(j + 999, #kv)))
      end
      redis.pcall('EXPIRE', k, rttl)
    end
  end
  local function ms(v) return v and string.format('%d', v) or '' end
  local tkv = {}
  for tk, t in pairs(TD) do
    tkv[#tkv + 1] = tk
    tkv[#tkv + 1] = ms(t.o) .. '\n' .. (t.om or '') .. '\n' .. (t.og or '') ..
      '\n' .. ms(t.r) .. '\n' .. (t.rm or '') .. '\n' .. (t.rg or '')
  end
  if #tkv > 0 then
    for j = 1, #tkv, 1000 do
      redis.pcall('HSET', RTP .. rgen, unpack(tkv, j, math.min(j + 999, #tkv)))
    end
    redis.pcall('EXPIRE', RTP .. rgen, rttl)
  end
  if n > 0 and #es == n then
    redis.call('LTRIM', LK, n, -1)
  else
    redis.call('DEL', LK)
  end
  return #es
end
