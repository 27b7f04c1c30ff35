-- KEYS: the claims hash, the job id sequence. ARGV: the lane's queue key prefix, grace ms, tile keys.
-- Makes a new job id and claims for it every tile no live job owns; returns the new id, then each
-- tile's owner (the new id where it was claimed: those tiles go into the new job, the rest are
-- coalesced into the job that owns them).
local now = now_ms()
local id = 'b' .. redis.call('INCR', KEYS[2]) .. '-' .. now
local grace = tonumber(ARGV[2])
local out = { id }
for i = 3, #ARGV do
  local owner = redis.call('HGET', KEYS[1], ARGV[i])
  if owner and owner_live(owner, ARGV[1], grace, now) then
    out[#out + 1] = owner
  else
    redis.call('HSET', KEYS[1], ARGV[i], id)
    out[#out + 1] = id
  end
end
return out
