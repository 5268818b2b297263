-- KEYS[1] P:jobs, KEYS[2] P:dead.
-- ARGV ttl, sent-key prefix, "P:job:", then records:
--   "op due nmarks ndead [nops]" key claimed_body [new_body] mark*
--   (nfields field*)*ndead (nargs arg*)*nops
-- ops (digests, docs/ARCHITECTURE.md), applied with a completion only:
--   H held heldby field heldto rcpt jobkey item dhash dkey dbody ddue
--     hold item for rcpt (HSET held jobkey item, heldby field, SADD heldto
--     rcpt) and make sure its digest job dkey exists (HSETNX + ZADD NX)
--   X held heldby field heldto rcpt jobkey item
--     a digest sent item: removed only while it is still the same item
--   N held dhash dkey dbody ddue
--     items left in held (held after the digest was composed): their
--     digest job dkey, as H does
--   J dhash dkey dbody ddue
--     a job that must exist (the monthly report's, one per recipient and
--     month, and the next planner): HSETNX + ZADD NX, as H's digest job
--   M key ttl
--     a marker (SET key 1 EX ttl): the monthly report's planner ran
--   I hash field msgid
--     the monthly report's counter of a message sent (HINCRBY, EXPIRE 400
--     days), whatever the record's op and whether the job is still the
--     claimed one (an unless may have removed it meanwhile): once per
--     message id, by its sent marker's value ("c\n" before the record:
--     counted)
--   T timeline entry msgid cap ttl
--     a message sent, in its client's timeline (P:timeline:<client>,
--     keys.h): LPUSH entry, LTRIM to cap, EXPIRE ttl, applied as I is and
--     once per message id (not when one of the newest cap entries names
--     msgid already: a settle sent again)
-- Their writes use pcall: a key of a wrong type loses that op, never the
-- settle's other writes.
-- (few arguments per job: each costs a copy in sukid and a Lua string in
-- Redis). op C completes, R reschedules to due with new_body (both only
-- when the stored body is still the claimed one: a job replaced meanwhile
-- survives), L leaves the job. Sent markers are written first, then dead
-- letters, then the job; the index entries of completed jobs go in one
-- ZREM at the end (the script is atomic: nobody sees the difference).
-- Dead letters go with the job's change, only while the stored body is the
-- claimed one, so a settle sent again (its reply was lost) adds none twice;
-- a job left (L) comes back and reports its failures then. Every record is
-- checked before the first write: Redis does not roll back a script that
-- fails midway. Returns the number of jobs completed or rescheduled.
local ttl, sp, JP = ARGV[1], ARGV[2], ARGV[3]
--! include sched-job-hash.inc.lua
local function rec(i)
  local op, due, nm, nd, no =
    string.match(ARGV[i], '^(%a) (%d+) (%d+) (%d+) ?(%d*)$')
  if not op then return nil end
  local j = i + 3 + (op == 'R' and 1 or 0) + tonumber(nm)
  for _ = 1, tonumber(nd) + (tonumber(no) or 0) do
    local nf = tonumber(ARGV[j])
    if not nf then return nil end
    j = j + nf + 1
  end
  return op, due, tonumber(nm), tonumber(nd), j, tonumber(no) or 0
end
local i = 4
while i <= #ARGV do
  local op, _, _, _, j = rec(i)
  if not op or j - 1 > #ARGV then
    return redis.error_reply('bad settle record')
  end
  -- any other letter would be taken for R (an HSET of no body, failing
  -- after the markers were written)
  if op ~= 'C' and op ~= 'R' and op ~= 'L' then
    return redis.error_reply('sched-settle: unknown record op ' .. op ..
      ' (C, R or L)')
  end
  i = j
end
-- Redis does not roll back: the shared keys' types are checked before the
-- first write, and a job hash of the wrong type leaves that job alone.
for k, t in pairs({[KEYS[1]] = 'zset', [KEYS[2]] = 'stream'}) do
  local have = redis.call('TYPE', k).ok
  if have ~= 'none' and have ~= t then
    return redis.error_reply('key ' .. k .. ' is a ' .. have .. ', not a ' .. t)
  end
end
-- digest jobs added here: the ZREM of the completed jobs at the end must
-- not take one out that a later record of the batch added again
local readd = {}
local function digest_job(dh, dk, db, dd)
  if redis.pcall('HSETNX', dh, dk, db) == 1 then
    redis.pcall('ZADD', KEYS[1], 'NX', dd, dk)
    readd[dk] = {dh, dd}
  end
end
local function apply_op(a, n)
  local o = ARGV[a]
  if o == 'H' and n == 12 then
    redis.pcall('HSET', ARGV[a + 1], ARGV[a + 6], ARGV[a + 7])
    redis.pcall('HSET', ARGV[a + 2], ARGV[a + 3], '1')
    redis.pcall('SADD', ARGV[a + 4], ARGV[a + 5])
    digest_job(ARGV[a + 8], ARGV[a + 9], ARGV[a + 10], ARGV[a + 11])
  elseif o == 'X' and n == 8 then
    if redis.pcall('HGET', ARGV[a + 1], ARGV[a + 6]) == ARGV[a + 7] then
      redis.pcall('HDEL', ARGV[a + 1], ARGV[a + 6])
      redis.pcall('HDEL', ARGV[a + 2], ARGV[a + 3])
    end
    if redis.pcall('EXISTS', ARGV[a + 1]) == 0 then
      redis.pcall('SREM', ARGV[a + 4], ARGV[a + 5])
    end
  elseif o == 'J' and n == 5 then
    digest_job(ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4])
  elseif o == 'M' and n == 3 then
    redis.pcall('SET', ARGV[a + 1], '1', 'EX', ARGV[a + 2])
  elseif o == 'I' and n == 4 then
    -- counted marks the marker's value with a "c\n" before the record it
    -- holds, which inbound mail still reads (inbound.c record_split)
    local k = sp .. ARGV[a + 3]
    local was = redis.pcall('GET', k)
    if type(was) ~= 'table' and string.sub(was or '', 1, 2) ~= 'c\n' then
      redis.pcall('SET', k, 'c\n' .. (was or ''), 'EX', ttl)
      redis.pcall('HINCRBY', ARGV[a + 1], ARGV[a + 2], 1)
      redis.pcall('EXPIRE', ARGV[a + 1], 400 * 86400)
    end
  elseif o == 'T' and n == 6 then
    local k, cap = ARGV[a + 1], tonumber(ARGV[a + 4]) or 0
    local have = cap > 0 and redis.pcall('LRANGE', k, 0, cap - 1)
    if type(have) == 'table' and not have.err then
      local mid = ARGV[a + 3]
      for x = 1, #have do
        if string.find(have[x], mid, 1, true) then return end
      end
      if redis.pcall('LPUSH', k, ARGV[a + 2]) > cap then
        redis.pcall('LTRIM', k, 0, cap - 1)
      end
      redis.pcall('EXPIRE', k, ARGV[a + 5])
    end
  elseif o == 'N' and n == 6 then
    if redis.pcall('EXISTS', ARGV[a + 1]) == 1 then
      digest_job(ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5])
    end
  end
end
local done, gone = 0, {}
i = 4
while i <= #ARGV do
  local op, due, nm, nd, nexti, no = rec(i)
  local key, claimed = ARGV[i + 1], ARGV[i + 2]
  i = i + 3
  local nb
  if op == 'R' then
    nb = ARGV[i]
    i = i + 1
  end
  for m = 0, nm - 1 do
    -- the value is the record inbound mail reads (lib/store/keys.h)
    redis.call('SET', sp .. ARGV[i + m], key, 'EX', ttl, 'NX')
  end
  i = i + nm
  local h = jobhash(key)
  local cur = op ~= 'L' and h and redis.pcall('HGET', h, key)
  local held = type(cur) == 'string' and cur == claimed
  for _ = 1, nd do
    local nf = tonumber(ARGV[i])
    if held then
      redis.call('XADD', KEYS[2], '*', unpack(ARGV, i + 1, i + nf))
    end
    i = i + nf + 1
  end
  -- ops after the job's own removal below would see the digest job gone:
  -- a completed digest job is removed first, then its N op may add the next
  local ops = {}
  for _ = 1, no do
    local nf = tonumber(ARGV[i])
    ops[#ops + 1] = {i + 1, nf}
    i = i + nf + 1
  end
  i = nexti
  if held then
    if op == 'C' then
      gone[#gone + 1] = key
      redis.call('HDEL', h, key)
    else
      redis.call('HSET', h, key, nb)
      redis.call('ZADD', KEYS[1], due, key)
    end
    done = done + 1
    if op == 'C' then
      for _, o in ipairs(ops) do
        local l = ARGV[o[1]]
        if l ~= 'I' and l ~= 'T' then apply_op(o[1], o[2]) end
      end
    end
  end
  for _, o in ipairs(ops) do
    local l = ARGV[o[1]]
    if l == 'I' or l == 'T' then apply_op(o[1], o[2]) end
  end
end
for g = 1, #gone, 1000 do
  local e = math.min(g + 999, #gone)
  redis.call('ZREM', KEYS[1], unpack(gone, g, e))
end
if #gone > 0 then
  for dk, v in pairs(readd) do
    if redis.pcall('HEXISTS', v[1], dk) == 1 then
      redis.call('ZADD', KEYS[1], 'NX', v[2], dk)
    end
  end
end
return done
