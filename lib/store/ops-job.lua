-- The console's and sukictl's job actions. KEYS[1] P:jobs, KEYS[2]
-- P:jobs-held; ARGV[1] run | hold | release, ARGV[2] the job key, ARGV[3]
-- "P:job:". Returns 1 (done), 0 when the job is not there (not
-- scheduled, resp. not held), or -1 when it is in flight: claimed by a
-- scheduler now (its score is the lease's end, its own time has come).
-- run: due now, unless already due or in flight (left alone: moving a
-- lease's end would let a second scheduler fire it beside the first).
-- hold: out of P:jobs into P:jobs-held with its score, so no scheduler
-- claims it (an in-flight job is refused: its settle would put it back);
-- release: back.
--! include redis-now.inc.lua
local JP = ARGV[3]
--! include sched-job-hash.inc.lua
for i = 1, 2 do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'zset' and t ~= 'none' then
    return redis.error_reply(KEYS[i] .. ' is a ' .. t .. ', not a zset')
  end
end
local op, k = ARGV[1], ARGV[2]
-- in flight: leased past now while the body's time (the retry's, else
-- the due time) has come; the body is read, never rewritten
local function in_flight(score)
  if tonumber(score) <= now then return false end
  local h = jobhash(k)
  local b = h and redis.pcall('HGET', h, k)
  if type(b) ~= 'string' then return false end
  local ok, j = pcall(cjson.decode, b)
  if not ok or type(j) ~= 'table' then return false end
  local at = tonumber(j['r']) or tonumber(j['d'])
  return at ~= nil and at <= now
end
if op == 'run' then
  local s = redis.call('ZSCORE', KEYS[1], k)
  if not s then return 0 end
  if in_flight(s) then return -1 end
  if tonumber(s) > now then redis.call('ZADD', KEYS[1], now, k) end
  return 1
elseif op == 'hold' then
  local s = redis.call('ZSCORE', KEYS[1], k)
  if not s then return 0 end
  if in_flight(s) then return -1 end
  redis.call('ZREM', KEYS[1], k)
  redis.call('ZADD', KEYS[2], s, k)
  return 1
elseif op == 'release' then
  local s = redis.call('ZSCORE', KEYS[2], k)
  if not s then return 0 end
  redis.call('ZREM', KEYS[2], k)
  redis.call('ZADD', KEYS[1], s, k)
  return 1
end
return redis.error_reply('unknown job operation ' .. tostring(op))
