-- POST /v1/events: add every event of one accepted body to the stream, all
-- or none. KEYS[1] the intake stream; ARGV the event documents (JSON,
-- already validated by the daemon). Returns the number added.
--
-- XADD with an automatic id fails only on a key of another type (checked
-- first) or on memory, which Redis refuses before a script's first write;
-- so nothing can fail half-way.
local t = redis.call('TYPE', KEYS[1]).ok
if t ~= 'none' and t ~= 'stream' then
  return redis.error_reply('key ' .. KEYS[1] .. ' is a ' .. t .. ', not a stream')
end
for i = 1, #ARGV do
  redis.call('XADD', KEYS[1], '*', 'event', ARGV[i])
end
return #ARGV
