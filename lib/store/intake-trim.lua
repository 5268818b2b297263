#!lua
-- Trim acknowledged history to ARGV[1] entries, never touching pending or
-- undelivered entries of any group; optionally delete consumers of group
-- ARGV[2] that hold nothing and were idle for ARGV[3] ms (0 = skip). KEYS[1]
-- stream, KEYS[2] P:dead. Returns {trimmed (-1: cannot count now), dead
-- entries, consumers deleted}.
--
-- Redis cannot rank an entry, so the entries that must stay are counted:
-- the group's lag (undelivered) plus the entries from its oldest pending
-- one to its last delivered one (normally the batches in flight). When an
-- entry has been pending behind more than `cap` newer ones (a consumer
-- died holding it), trimming waits until recovery claims it; it never
-- guesses.
local dl = 0
if redis.call('TYPE', KEYS[2]).ok == 'stream' then
  dl = redis.call('XLEN', KEYS[2])
end
if redis.call('TYPE', KEYS[1]).ok ~= 'stream' then return {0, dl, 0} end
local gs = redis.call('XINFO', 'GROUPS', KEYS[1])
if #gs == 0 then return {0, dl, 0} end
local must, cap = 0, 20000
for _, g in ipairs(gs) do
  local h = {}
  for k = 1, #g, 2 do h[g[k]] = g[k + 1] end
  if not h['lag'] then return {-1, dl, 0} end
  local m = h['lag'] + 1
  if h['pending'] > 0 then
    local s = redis.call('XPENDING', KEYS[1], h['name'])
    local r = redis.call('XRANGE', KEYS[1], s[2], h['last-delivered-id'], 'COUNT', cap)
    if #r >= cap then return {-1, dl, 0} end
    m = h['lag'] + #r
  end
  if m > must then must = m end
end
local trimmed = redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', must + tonumber(ARGV[1]), 'LIMIT', 100000)
local gone = 0
if tonumber(ARGV[3]) > 0 then
  local cs = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[2])
  if type(cs) == 'table' and not cs.err then
    for _, c in ipairs(cs) do
      local h = {}
      for k = 1, #c, 2 do h[c[k]] = c[k + 1] end
      if h['pending'] == 0 and h['idle'] > tonumber(ARGV[3]) then
        redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[2], h['name'])
        gone = gone + 1
      end
    end
  end
end
return {trimmed, dl, gone}
