-- KEYS: the claims hash. ARGV: the lane's queue key prefix, grace ms, tile key.
-- 1 while a live job owns the tile's render (what the sweep asks of a tile pending too long).
local owner = redis.call('HGET', KEYS[1], ARGV[3])
if owner and owner_live(owner, ARGV[1], tonumber(ARGV[2]), now_ms()) then return 1 end
return 0
