-- Next page of the audience: record a ledger entry for every recipient
-- (queued, skipped with the reason, or sent when a P:sent marker says so),
-- take the queued ones into the in-flight set and move the cursor, all at
-- once. ARGV: token, prefix, kind, value, scan count, opt-in (1/0), wanted
-- recipients, now, campaign name, from domain. A held set whose time has
-- come joins the pending set (held: -1 nothing held, 0 released now, so
-- campaign-take has work, else ms to wait). Returns {'ok', cursor,
-- completed, held, id, profile, ...}, {'done', completed, held},
-- {'state', state} or {'lost'}.
--! include campaign-common.inc.lua
do
  local bad = wrong_types()
  if bad then return bad end
end
local P, kind, val = ARGV[2], ARGV[3], ARGV[4]
local count, optin, want = tonumber(ARGV[5]), ARGV[6] == '1', tonumber(ARGV[7])
local now, cname, dom = ARGV[8], ARGV[9], ARGV[10]
if not leased() then return {'lost'} end
local h = redis.call('HMGET', KEYS[1], 'state', 'cursor', 'walk_done')
if h[1] ~= 'running' then return {'state', h[1] or ''} end
local held = release_held()
if h[3] == '1' then return {'done', complete(now), held} end
local cursor = h[2] or '0'
local cpre = P .. ':client:'
local out = {'ok', '', 0, held}
local loops, got = 0, 0
repeat
  local r
  if kind == 'set' then
    r = redis.call('SSCAN', val, cursor, 'COUNT', count)
  else
    r = redis.call('SCAN', cursor, 'MATCH', cpre .. '*', 'COUNT', count)
  end
  cursor = r[1]
  for _, item in ipairs(r[2]) do
    local id = item
    if kind ~= 'set' then id = string.sub(item, #cpre + 1) end
    if id ~= '' and redis.call('HEXISTS', KEYS[2], id) == 0 then
      local prof, p = profile(cpre .. id)
      if prof then
        local inaud = true
        if kind == 'segment' then
          inaud = p.segment == val
        elseif kind == 'tag' then
          inaud = false
          for t in string.gmatch(p.tags or '', '[^,]+') do
            if string.match(t, '^%s*(.-)%s*$') == val then
              inaud = true
              break
            end
          end
        end
        if inaud then
          add('recipients', 1)
          local oc = verdict(p, optin)
          if not oc then
            local mid = '<' .. redis.sha1hex(cname .. '\n' .. id) ..
              '.campaign@' .. dom .. '>'
            if redis.call('EXISTS', P .. ':sent:' .. mid) == 1 then
              oc = 'sent'
            end
          end
          if oc == 'sent' then
            redis.call('HSET', KEYS[2], id, oc)
            add('sent', 1)
          elseif oc then
            redis.call('HSET', KEYS[2], id, oc)
            add(skipfield(oc), 1)
          else
            redis.call('HSET', KEYS[2], id, 'queued')
            redis.call('SADD', KEYS[4], id)
            add('queued', 1)
            out[#out + 1] = id
            out[#out + 1] = prof
            got = got + 1
          end
        end
      end
    end
  end
  loops = loops + 1
until cursor == '0' or got >= want or loops >= 16
flush()
redis.call('HSET', KEYS[1], 'cursor', cursor)
if cursor == '0' then redis.call('HSET', KEYS[1], 'walk_done', '1') end
out[2] = cursor
out[3] = complete(now)
return out
