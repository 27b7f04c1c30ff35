-- KEYS: the claims hash. ARGV: the lane's queue key prefix, tile key.
-- Takes a tile out of the job that owns it, unless that job is running (its worker checks each
-- tile's demand before rendering it). Returns false when no job owns the tile, {owner, -1} when its
-- job is running, else {owner, 1 if no other tile of the job is still claimed by it (the job can
-- go), else 0}.
local owner = redis.call('HGET', KEYS[1], ARGV[2])
if not owner then return false end
local job = ARGV[1] .. owner
if redis.call('EXISTS', job .. ':lock') == 1 then return { owner, -1 } end
redis.call('HDEL', KEYS[1], ARGV[2])
local data = redis.call('HGET', job, 'data')
if data then
  local ok, payload = pcall(cjson.decode, data)
  if ok and type(payload) == 'table' then
    local keys = { payload.key }
    if type(payload.batch) == 'table' then
      for _, b in ipairs(payload.batch) do keys[#keys + 1] = b.key end
    end
    for _, k in ipairs(keys) do
      if k ~= ARGV[2] and redis.call('HGET', KEYS[1], k) == owner then return { owner, 0 } end
    end
  end
end
return { owner, 1 }
