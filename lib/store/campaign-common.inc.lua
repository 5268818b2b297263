-- Every runner script gets KEYS: 1 campaign hash, 2 ledger, 3 pending set
-- (queued, waiting for a runner), 4 in-flight set (taken by the runner that
-- holds the lease), 5 suppressed set, 6 lease, 7 held set (left in flight
-- by an earlier runner, waiting until its transfers must have ended).
local d = {}
local function add(f, n) d[f] = (d[f] or 0) + n end
local function flush()
  for f, n in pairs(d) do
    if n ~= 0 then redis.call('HINCRBY', KEYS[1], f, n) end
  end
  d = {}
end
local function skipfield(oc)
  return 'skipped_' .. (string.gsub(string.sub(oc, 9), '-', '_'))
end
local function verdict(p, optin)
  local e = p.email
  if not e or e == '' then return 'skipped:no-address' end
  if redis.call('SISMEMBER', KEYS[5], string.lower(e)) == 1 then
    return 'skipped:suppressed'
  end
  if optin and p.consent ~= 'true' then
    return 'skipped:no-consent'
  end
  return nil
end
local function profile(key)
  local prof = redis.pcall('HGETALL', key)
  if type(prof) ~= 'table' or prof.err then return nil, nil end
  local p = {}
  for i = 1, #prof, 2 do p[prof[i]] = prof[i + 1] end
  return prof, p
end
local function complete(now)
  local h = redis.call('HMGET', KEYS[1], 'state', 'walk_done', 'owner')
  if h[1] == 'running' and h[2] == '1' and
     redis.call('SCARD', KEYS[3]) == 0 and
     redis.call('SCARD', KEYS[4]) == 0 and
     redis.call('SCARD', KEYS[7]) == 0 then
    local s = 'none'
    if h[3] and h[3] ~= '' then s = 'pending' end
    redis.call('HSET', KEYS[1], 'state', 'completed', 'finished', now,
      'summary', s)
    return 1
  end
  return 0
end
local function leased()
  return redis.call('GET', KEYS[6]) == ARGV[1]
end
-- Redis's clock in ms: a hold is timed on one clock whichever daemon
-- set it.
local function redis_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Once the hold has passed (field held_until, Redis ms), move the held
-- set into the pending set, where campaign-take looks for each one's
-- P:sent marker before it is sent again. Returns -1 (nothing held), 0
-- (moved now) or the ms still to wait.
local function release_held()
  if redis.call('EXISTS', KEYS[7]) == 0 then return -1 end
  local u = tonumber(redis.call('HGET', KEYS[1], 'held_until') or '0') or 0
  local t = redis_ms()
  if t < u then return u - t end
  redis.call('SUNIONSTORE', KEYS[3], KEYS[3], KEYS[7])
  redis.call('DEL', KEYS[7])
  redis.call('HDEL', KEYS[1], 'held_until')
  return 0
end
-- Redis does not roll back a script that fails midway, so the scripts that
-- write several of these keys check every key's type before the first
-- write: a key of the wrong type fails the call with nothing changed.
local function wrong_types()
  local want = {'hash', 'hash', 'set', 'set', 'set', 'string', 'set'}
  for i, t in ipairs(want) do
    local have = redis.call('TYPE', KEYS[i]).ok
    if have ~= 'none' and have ~= t then
      return redis.error_reply('key ' .. KEYS[i] .. ' is a ' .. have ..
        ', not a ' .. t)
    end
  end
  return nil
end
