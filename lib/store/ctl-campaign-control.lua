-- KEYS: hash; ARGV: command, now. Returns the new state or an error.
local h = redis.call('HMGET', KEYS[1], 'state', 'start_at')
local st, cmd, now = h[1], ARGV[1], tonumber(ARGV[2])
if not st then return redis.error_reply('no such campaign') end
if cmd == 'pause' then
  if st ~= 'running' and st ~= 'scheduled' then
    return redis.error_reply('campaign is ' .. st .. ', not running')
  end
  redis.call('HSET', KEYS[1], 'state', 'paused', 'reason',
    'paused by an operator')
  return 'paused'
elseif cmd == 'resume' then
  if st ~= 'paused' then
    return redis.error_reply('campaign is ' .. st .. ', not paused')
  end
  local ns = 'running'
  if tonumber(h[2] or '0') > now then ns = 'scheduled' end
  redis.call('HSET', KEYS[1], 'state', ns, 'reason', '', 'err_sent', 0,
    'err_failed', 0)
  return ns
elseif cmd == 'cancel' then
  if st == 'completed' or st == 'cancelled' then
    return redis.error_reply('campaign is already ' .. st)
  end
  redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished', now,
    'reason', 'cancelled by an operator')
  return 'cancelled'
end
return redis.error_reply('unknown command')
