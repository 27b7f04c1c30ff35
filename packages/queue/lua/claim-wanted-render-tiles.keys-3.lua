-- KEYS: the claims hash, the job id sequence, the tile demand hash. ARGV: the lane's queue key
-- prefix, grace ms, tile keys.
-- As claim-render-tiles, counting one demand for each tile first, in the same atomic step: the
-- requester's demand is in before any job it claims or coalesces into can be found by a worker
-- (which skips a tile nobody wants), without a round trip of its own before the claim.
return claim_tiles(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]), KEYS[3])
