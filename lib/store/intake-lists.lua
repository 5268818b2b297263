#!lua
-- Move up to ARGV[1] items from each list KEYS[2..] into the stream
-- KEYS[1] (field "event"). Returns {moved, wrong-typed list keys...}.
local t = redis.call('TYPE', KEYS[1]).ok
if t ~= 'none' and t ~= 'stream' then
  return redis.error_reply('stream ' .. KEYS[1] .. ' is a ' .. t)
end
local n, out = tonumber(ARGV[1]), {0}
for k = 2, #KEYS do
  local lt = redis.call('TYPE', KEYS[k]).ok
  if lt == 'list' then
    local items = redis.call('RPOP', KEYS[k], n)
    if items then
      for _, v in ipairs(items) do
        redis.call('XADD', KEYS[1], '*', 'event', v)
      end
      out[1] = out[1] + #items
    end
  elseif lt ~= 'none' then
    out[#out + 1] = KEYS[k]
  end
end
return out
