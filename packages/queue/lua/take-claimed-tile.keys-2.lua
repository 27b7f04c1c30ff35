-- KEYS: the claims hash, the demand hash. ARGV: tile key, job id.
-- A worker's check before rendering one tile of a claimed job: -1 if the job does not own it (any
-- more: withdrawn, or settled by an earlier attempt), 0 if nobody wants it (the claim is dropped
-- in the same step, so a request counted after this finds no owner and enqueues again), else how
-- many want it.
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return -1 end
local n = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if n <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 0
end
return n
