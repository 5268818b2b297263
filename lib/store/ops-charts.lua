-- The console's live charts: the last ARGV[2] minutes of chart buckets,
-- oldest first. ARGV[1] "P:chart:" (Lua: the bucket names are spelled
-- here), ARGV[2] how many minutes. Reads only.
-- Returns {now_ms, first minute, (events, sent, failed, retried, late_n,
-- late_sum_ms, late_max_ms) per minute}.
--! include redis-now.inc.lua
local n = tonumber(ARGV[2])
local last = math.floor(now / 60000)
local out = {now, last - n + 1}
local f = {'events', 'sent', 'failed', 'retried', 'late_n', 'late_sum_ms',
           'late_max_ms'}
for m = last - n + 1, last do
  local k = ARGV[1] .. m
  local v = {}
  if redis.call('TYPE', k)['ok'] == 'hash' then
    v = redis.call('HMGET', k, unpack(f))
  end
  for i = 1, #f do out[#out + 1] = tonumber(v[i] or 0) or 0 end
end
return out
