-- KEYS: the claims hash. ARGV: the render lane's queue key prefix, the heavy lane's, grace ms, HSCAN
-- cursor, count. Drops claims whose job is gone in both lanes (removed by BullMQ after too many
-- stalls, its claimer died before adding it, an older worker ran only its first tile): nothing
-- would render those tiles, and the queue depth counts claims. Returns the next cursor.
local now = now_ms()
local grace = tonumber(ARGV[3])
local page = redis.call('HSCAN', KEYS[1], ARGV[4], 'COUNT', ARGV[5])
local fields = page[2]
for i = 1, #fields, 2 do
  local owner = fields[i + 1]
  if not owner_live(owner, ARGV[1], grace, now) and not owner_live(owner, ARGV[2], grace, now) then
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
return page[1]
