-- KEYS: reservations hash (holder -> "bytes:expiresAtMs"), publish generation of the tenant.
-- ARGV: holder, bytes, used (the tenant's stored bytes as the caller read them), quota, the
-- generation read before that, now (ms), ttl (ms).
-- Returns {1, 0} reserved; {-1, 0} a dataset of the tenant was published since `used` was read
-- (read again); {0, used + others' reservations} over the quota.
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[5] then return {-1, 0} end
local now = tonumber(ARGV[6])
local others = 0
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local bytes, expires = string.match(entries[i + 1], '^(%d+):(%d+)$')
  if not bytes or tonumber(expires) <= now then
    redis.call('HDEL', KEYS[1], entries[i])
  elseif entries[i] ~= ARGV[1] then
    others = others + tonumber(bytes)
  end
end
local taken = tonumber(ARGV[3]) + others
if taken + tonumber(ARGV[2]) > tonumber(ARGV[4]) then return {0, taken} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. (now + tonumber(ARGV[7])))
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return {1, 0}
