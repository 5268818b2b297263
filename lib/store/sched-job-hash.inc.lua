-- The client component of a job key: P:job:<it> holds the job's body.
-- Keys are "rule:client:subject:slot", each part percent-encoded, so the
-- second ':'-separated part is the client as every script spells it.
local function jobhash(k)
  local c = string.match(k, '^[^:]*:([^:]+):')
  return c and (JP .. c)
end
