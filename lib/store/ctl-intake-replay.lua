-- Replay a dead letter, atomically. KEYS[1] P:dead, KEYS[2] stream,
-- KEYS[3] P:jobs; ARGV[1] dead id, ARGV[2] "P:job:", ARGV[3] "1": force
-- (the job gets "f":1, and the rule's max_lateness does not drop it).
-- An event goes back into the stream (its original payload). A message or
-- job goes back into the schedule, due now, under its job key with its
-- stored body minus the attempt and retry members ("a", "r"), cut out of
-- the text rather than re-encoded: the due time and the event stay byte
-- for byte, so every message gets the Message-ID it had, a recipient
-- already sent to is skipped by its sent marker, and nothing goes out
-- twice. Returns {"event", new stream id} or {"job", job key}, or an error
-- (before any write).
local JP = ARGV[2]
--! include sched-job-hash.inc.lua
for i, want in ipairs({'stream', 'stream', 'zset'}) do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= want and t ~= 'none' then
    return redis.error_reply(KEYS[i] .. ' is a ' .. t .. ', not a ' .. want)
  end
end
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then return redis.error_reply('no dead letter ' .. ARGV[1]) end
local f, h = e[1][2], {}
for k = 1, #f, 2 do h[f[k]] = f[k + 1] end
if not h['payload'] then
  return redis.error_reply('dead letter ' .. ARGV[1] .. ' has no payload to replay')
end
if h['kind'] == 'event' then
  local id = redis.call('XADD', KEYS[2], '*', 'event', h['payload'])
  redis.call('XDEL', KEYS[1], ARGV[1])
  return {'event', id}
end
if h['kind'] ~= 'message' and h['kind'] ~= 'job' then
  return redis.error_reply('dead letter ' .. ARGV[1] .. ' is a ' ..
    tostring(h['kind']) .. '; only events, messages and jobs can be replayed')
end
local key = h['source']
local jh = key and jobhash(key)
if not jh then
  return redis.error_reply('dead letter ' .. ARGV[1] .. ' names no job key')
end
local t = redis.call('TYPE', jh)['ok']
if t ~= 'hash' and t ~= 'none' then
  return redis.error_reply(jh .. ' is a ' .. t .. ', not a hash')
end
if redis.call('ZSCORE', KEYS[3], key) or redis.call('HEXISTS', jh, key) == 1 then
  return redis.error_reply('job ' .. key .. ' is scheduled again; replay '
    .. ARGV[1] .. ' after it ran, or cancel it first')
end
-- The top-level "a", "r" and "f" members, found by a scan that skips
-- strings and nested objects (the event's own "a" is its at and stays).
local b, out, depth, i, n = h['payload'], {}, 0, 1, #h['payload']
while i <= n do
  local c = string.sub(b, i, i)
  if c == '"' then
    local j = i + 1
    while j <= n do
      local d = string.sub(b, j, j)
      if d == '\\' then j = j + 2
      elseif d == '"' then break
      else j = j + 1 end
    end
    out[#out + 1] = string.sub(b, i, j)
    i = j + 1
  else
    if (c == ',' and depth == 1) or (c == '{' and depth == 0) then
      local m = string.match(b, '^"[arf]":%-?%d+', i + 1)
      if m then
        local after = i + 1 + #m
        if c == ',' then
          i = after -- drop ',"a":N'
        else
          out[#out + 1] = '{'
          depth = 1
          i = after -- '{"a":N,"d":..' -> '{,"d":..': the ',' goes next
          if string.sub(b, i, i) == ',' then i = i + 1 end
        end
        c = nil
      end
    end
    if c then
      if c == '{' or c == '[' then depth = depth + 1
      elseif c == '}' or c == ']' then depth = depth - 1 end
      out[#out + 1] = c
      i = i + 1
    end
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nb = table.concat(out)
if ARGV[3] == '1' and string.sub(nb, -1) == '}' then
  -- at the end: intake-apply reads '{"d":N,"o":N' at the start
  nb = string.sub(nb, 1, -2) .. (nb == '{}' and '' or ',') .. '"f":1}'
end
redis.call('HSET', jh, key, nb)
redis.call('ZADD', KEYS[3], now, key)
redis.call('XDEL', KEYS[1], ARGV[1])
return {'job', key}
