-- Campaigns as sukictl campaign status/list and the console show them.
-- KEYS[1] P:campaigns; ARGV[1] "P:campaign:" (Lua: the hashes are named
-- here), ARGV[2] one campaign's name, or "" for all of them (sorted).
-- Returns {name, {field, value...}, audience set size or -1, ...}; a name
-- without a hash is left out. Reads only.
local names = {}
if ARGV[2] ~= '' then
  names = {ARGV[2]}
elseif redis.call('TYPE', KEYS[1])['ok'] == 'set' then
  names = redis.call('SMEMBERS', KEYS[1])
  table.sort(names)
end
local out = {}
for _, n in ipairs(names) do
  local k = ARGV[1] .. n
  if redis.call('TYPE', k)['ok'] == 'hash' then
    local h = redis.call('HGETALL', k)
    local card = -1
    for i = 1, #h, 2 do
      if h[i] == 'audience' and string.sub(h[i + 1], 1, 4) == 'set=' then
        local s = string.sub(h[i + 1], 5)
        if redis.call('TYPE', s)['ok'] == 'set' then
          card = redis.call('SCARD', s)
        else
          card = 0
        end
      end
    end
    out[#out + 1] = n
    out[#out + 1] = h
    out[#out + 1] = card
  end
end
return out
