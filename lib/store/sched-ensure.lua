-- Make sure a job exists (the monthly report's planner): KEYS[1] its job
-- hash, KEYS[2] P:jobs; ARGV key, body, due, and a marker key that says
-- the job already ran (then nothing is added). A job already there
-- (pending, claimed or rescheduled) is left as it is. Both keys' types are
-- checked first. Returns 1 when it was added, else 0.
for k, t in pairs({[KEYS[1]] = 'hash', [KEYS[2]] = 'zset'}) do
  local have = redis.call('TYPE', k).ok
  if have ~= 'none' and have ~= t then
    return redis.error_reply('key ' .. k .. ' is a ' .. have .. ', not a ' .. t)
  end
end
if ARGV[4] and redis.call('EXISTS', ARGV[4]) == 1 then return 0 end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('ZADD', KEYS[2], 'NX', ARGV[3], ARGV[1])
  return 1
end
return 0
