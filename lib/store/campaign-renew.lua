-- Renew the lease and read the state. KEYS: hash, lease; ARGV: token,
-- lease ms. Returns {'ok', state, gen, summary} or {'lost'}.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {'lost'} end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local h = redis.call('HMGET', KEYS[1], 'state', 'gen', 'summary')
return {'ok', h[1] or '', h[2] or '0', h[3] or ''}
