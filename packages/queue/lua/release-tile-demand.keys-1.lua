-- KEYS: the demand hash. ARGV: tile keys. Returns the keys nobody wants any more.
local gone = {}
for i, field in ipairs(ARGV) do
  local n = redis.call('HINCRBY', KEYS[1], field, -1)
  if n <= 0 then
    redis.call('HDEL', KEYS[1], field)
    table.insert(gone, field)
  end
end
return gone
