-- Every runner script gets KEYS: 1 campaign hash, 2 ledger, 3 pending set
-- (queued, waiting for a runner), 4 in-flight set (taken by the runner that
-- holds the lease), 5 suppressed set, 6 lease.
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
     redis.call('SCARD', KEYS[4]) == 0 then
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
