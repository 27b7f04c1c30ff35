-- KEYS: version counter. ARGV: floor. Reserves one more than both the counter and the floor.
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if floor > v then v = floor end
v = v + 1
redis.call('SET', KEYS[1], v)
return v
