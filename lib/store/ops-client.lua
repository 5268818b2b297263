-- A client as sukictl client and the console show it. KEYS[1]
-- P:client:<id>, KEYS[2] P:client-events, KEYS[3] P:job:<client>, KEYS[4]
-- P:jobs, KEYS[5] P:jobs-held, KEYS[6] P:timeline:<client>; ARGV[1] the
-- client id, ARGV[2] how many timeline entries (console.timeline). Reads
-- only. Returns {{profile field, value...}, events applied or false,
-- {job key, body, score or false, held score or false, ...}, {timeline
-- entry, ...} (newest first)}.
local function typ(k) return redis.call('TYPE', k)['ok'] end
local prof = typ(KEYS[1]) == 'hash' and redis.call('HGETALL', KEYS[1]) or {}
local nev = false
if typ(KEYS[2]) == 'hash' then nev = redis.call('HGET', KEYS[2], ARGV[1]) end
local jobs = {}
if typ(KEYS[3]) == 'hash' then
  local h = redis.call('HGETALL', KEYS[3])
  local zj, zh = typ(KEYS[4]) == 'zset', typ(KEYS[5]) == 'zset'
  for i = 1, #h, 2 do
    jobs[#jobs + 1] = h[i]
    jobs[#jobs + 1] = h[i + 1]
    jobs[#jobs + 1] = zj and redis.call('ZSCORE', KEYS[4], h[i]) or false
    jobs[#jobs + 1] = zh and redis.call('ZSCORE', KEYS[5], h[i]) or false
  end
end
local tl, cap = {}, tonumber(ARGV[2]) or 0
if cap > 0 and typ(KEYS[6]) == 'list' then
  tl = redis.call('LRANGE', KEYS[6], 0, cap - 1)
end
return {prof, nev, jobs, tl}
