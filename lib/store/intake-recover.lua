#!lua
-- Claim entries idle for at least min_idle from any consumer. KEYS[1]
-- stream, KEYS[2] P:lasterr; ARGV: group, consumer, min_idle ms, count.
-- Returns {{id, deliveries before this claim, last error, fields}, ...};
-- fields is 0 for an entry no longer in the stream.
-- P:lasterr's type first: an HGET failing after an XCLAIM would leave that
-- claim done (Redis does not roll back) and the entries' errors unread.
local lt = redis.call('TYPE', KEYS[2]).ok
if lt ~= 'none' and lt ~= 'hash' then
  return redis.error_reply('key ' .. KEYS[2] .. ' is a ' .. lt .. ', not a hash')
end
local p = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], '-', '+', ARGV[4])
if #p == 0 then return {} end
local ids, cnt = {}, {}
for k, e in ipairs(p) do
  ids[k] = e[1]
  cnt[e[1]] = e[4]
end
local out = {}
for j = 1, #ids, 500 do
  local cl = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], unpack(ids, j, math.min(j + 499, #ids)))
  for _, e in ipairs(cl) do
    if e then
      local le = redis.call('HGET', KEYS[2], e[1])
      out[#out + 1] = {e[1], cnt[e[1]] or 0, le or '', e[2] or 0}
    end
  end
end
return out
