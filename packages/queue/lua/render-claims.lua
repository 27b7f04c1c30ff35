-- Shared by the render-claims scripts (render-claims.ts). A claim maps a tile key to the id of the
-- job that owns its render ('b<seq>-<ms>', the ms being Redis's clock when it was claimed). The
-- owner is live while its job's hash exists (from add until removal, across retries and stalls),
-- and for grace_ms after the claim (the job is added right after its claims, by the claimer).
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function owner_live(owner, queue_prefix, grace_ms, now)
  if redis.call('EXISTS', queue_prefix .. owner) == 1 then return true end
  local at = tonumber(string.match(owner, '%-(%d+)$'))
  return at ~= nil and now - at < grace_ms
end

-- Makes a new job id and claims for it every tile (ARGV[3..]) no live job owns, after counting one
-- demand per tile in demand_key when given. Returns the new id, then each tile's owner (the new id
-- where it was claimed: those tiles go into the new job, the rest are coalesced into the job that
-- owns them).
local function claim_tiles(claims_key, seq_key, queue_prefix, grace_ms, demand_key)
  local now = now_ms()
  local id = 'b' .. redis.call('INCR', seq_key) .. '-' .. now
  local out = { id }
  for i = 3, #ARGV do
    if demand_key then redis.call('HINCRBY', demand_key, ARGV[i], 1) end
    local owner = redis.call('HGET', claims_key, ARGV[i])
    if owner and owner_live(owner, queue_prefix, grace_ms, now) then
      out[#out + 1] = owner
    else
      redis.call('HSET', claims_key, ARGV[i], id)
      out[#out + 1] = id
    end
  end
  return out
end
