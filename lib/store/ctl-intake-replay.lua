-- Re-add a dead event's original payload to the stream and delete the dead
-- letter, atomically. KEYS[1] P:dead, KEYS[2] stream; ARGV[1] dead id.
-- Returns the new stream id or an error.
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then return redis.error_reply('no dead letter ' .. ARGV[1]) end
local f, h = e[1][2], {}
for k = 1, #f, 2 do h[f[k]] = f[k + 1] end
if h['kind'] ~= 'event' then
  return redis.error_reply('dead letter ' .. ARGV[1] .. ' is a ' ..
    tostring(h['kind']) .. ', not an event; only events can be replayed')
end
if not h['payload'] then
  return redis.error_reply('dead letter ' .. ARGV[1] .. ' has no event payload to replay')
end
local id = redis.call('XADD', KEYS[2], '*', 'event', h['payload'])
redis.call('XDEL', KEYS[1], ARGV[1])
return id
