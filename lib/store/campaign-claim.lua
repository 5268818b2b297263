-- Find a campaign that needs a runner and take its lease. KEYS[1]
-- P:campaigns; ARGV: prefix, token, lease ms, now, names to leave out.
-- A scheduled campaign whose start time has come starts running here.
-- Returns {name, {hash fields}} or {}.
local skip = {}
for i = 5, #ARGV do skip[ARGV[i]] = true end
local now = tonumber(ARGV[4])
for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if not skip[n] then
    local hk = ARGV[1] .. ':campaign:' .. n
    local h = redis.call('HMGET', hk, 'state', 'start_at', 'summary')
    local st = h[1]
    local due = st == 'scheduled' and tonumber(h[2] or '0') <= now
    if st == 'running' or due or
       (st == 'completed' and h[3] == 'pending') then
      if redis.call('SET', ARGV[1] .. ':clock:' .. n, ARGV[2], 'NX',
                    'PX', ARGV[3]) then
        if due then redis.call('HSET', hk, 'state', 'running') end
        if st ~= 'completed' and
           redis.call('HEXISTS', hk, 'started') == 0 then
          redis.call('HSET', hk, 'started', ARGV[4])
        end
        redis.call('HSET', hk, 'runner', ARGV[2])
        return {n, redis.call('HGETALL', hk)}
      end
    end
  end
end
return {}
