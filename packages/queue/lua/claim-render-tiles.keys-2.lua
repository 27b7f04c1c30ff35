-- KEYS: the claims hash, the job id sequence. ARGV: the lane's queue key prefix, grace ms, tile keys.
-- Makes a new job id and claims for it every tile no live job owns (claim_tiles, render-claims.lua).
return claim_tiles(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]), nil)
