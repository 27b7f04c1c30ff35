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
