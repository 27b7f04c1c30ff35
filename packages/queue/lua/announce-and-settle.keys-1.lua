-- KEYS: the demand hash. ARGV: the tile-events channel, the event (JSON), the tile key.
-- Announces a settled tile (stored, or failed for good), then clears its demand in the same atomic
-- step; returns how many still wanted it at that moment (0: nobody did).
redis.call('PUBLISH', ARGV[1], ARGV[2])
local n = redis.call('HGET', KEYS[1], ARGV[3])
if not n then return 0 end
redis.call('HDEL', KEYS[1], ARGV[3])
return tonumber(n)
