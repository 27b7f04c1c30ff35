-- KEYS: the demand hash, the claims hash. ARGV: the tile-events channel, the event (JSON), the tile
-- key, the job id, '1' to announce only if the job still owns the tile (failures: a tile another
-- attempt already announced must not be reported failed).
-- announce-and-settle.keys-1.lua for a tile of a claimed job: the claim is dropped in the same step.
-- Returns how many still wanted the tile, or -1 when nothing was announced.
local owned = redis.call('HGET', KEYS[2], ARGV[3]) == ARGV[4]
if not owned and ARGV[5] == '1' then return -1 end
if owned then redis.call('HDEL', KEYS[2], ARGV[3]) end
redis.call('PUBLISH', ARGV[1], ARGV[2])
local n = redis.call('HGET', KEYS[1], ARGV[3])
if not n then return 0 end
redis.call('HDEL', KEYS[1], ARGV[3])
return tonumber(n)
