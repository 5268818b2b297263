-- Redis's clock, in ms: leases and due times are read against one clock,
-- whatever the daemons' own clocks say.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
