-- The figures of sukictl status and the console's overview, one reply.
-- KEYS[1] the stream, KEYS[2] P:dead, KEYS[3] P:jobs, KEYS[4] P:stats,
-- KEYS[5] P:daemons; ARGV[1] the group, ARGV[2] "P:daemon:", ARGV[3] how
-- long a heartbeat lives (ms). Reads only.
-- Returns {stream_length, group_found, consumers, pending, lag (-1: Redis
-- cannot tell), oldest (ms of the oldest entry pending or not yet
-- delivered, -1: none), dead_entries, jobs_scheduled, applied, duplicate,
-- invalid, poison, now, n, (consumer, {heartbeat field, value...})*n}.
--! include redis-now.inc.lua
local function typ(k) return redis.call('TYPE', k)['ok'] end
local function len(k, want, cmd)
  local t = typ(k)
  if t == want then return redis.call(cmd, k) end
  return 0
end
local out = {len(KEYS[1], 'stream', 'XLEN'), 0, 0, 0,
             len(KEYS[1], 'stream', 'XLEN'), -1}
if typ(KEYS[1]) == 'stream' then
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local h = {}
    for i = 1, #g, 2 do h[g[i]] = g[i + 1] end
    if h['name'] == ARGV[1] then
      out[2], out[3], out[4] = 1, h['consumers'], h['pending']
      out[5] = type(h['lag']) == 'number' and h['lag'] or -1
      local oldest = -1
      if h['pending'] > 0 then
        local p = redis.call('XPENDING', KEYS[1], ARGV[1])
        oldest = tonumber(string.match(p[2], '^(%d+)'))
      end
      local nx = redis.call('XRANGE', KEYS[1], '(' .. h['last-delivered-id'],
                            '+', 'COUNT', 1)
      if #nx > 0 then
        local ms = tonumber(string.match(nx[1][1], '^(%d+)'))
        if oldest < 0 or ms < oldest then oldest = ms end
      end
      out[6] = oldest
    end
  end
end
out[7] = len(KEYS[2], 'stream', 'XLEN')
out[8] = len(KEYS[3], 'zset', 'ZCARD')
local names = {'events_applied', 'events_duplicate', 'events_invalid',
               'events_poison'}
local st = typ(KEYS[4]) == 'hash' and redis.call('HMGET', KEYS[4], unpack(names))
           or {}
for i = 1, #names do out[8 + i] = tonumber(st[i] or 0) or 0 end
out[13] = now
local live = {}
if typ(KEYS[5]) == 'zset' then
  live = redis.call('ZRANGEBYSCORE', KEYS[5], now - tonumber(ARGV[3]), '+inf')
end
local n = 0
local rest = {}
for _, c in ipairs(live) do
  local k = ARGV[2] .. c
  if typ(k) == 'hash' then
    n = n + 1
    rest[#rest + 1] = c
    rest[#rest + 1] = redis.call('HGETALL', k)
  end
end
out[14] = n
for _, v in ipairs(rest) do out[#out + 1] = v end
return out
