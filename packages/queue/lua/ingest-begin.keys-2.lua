-- KEYS: lock, status. ARGV: jobId, dataset, now, status key prefix, ttl, tenant. Returns '' or the holder.
local holder = redis.call('GET', KEYS[1])
if holder then
  local st = redis.call('HGET', ARGV[4] .. holder, 'state')
  if st and st ~= 'completed' and st ~= 'failed' then return holder end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[5])
redis.call('HSET', KEYS[2], 'dataset', ARGV[2], 'tenant', ARGV[6], 'state', 'queued', 'done', 0, 'total', 0, 'units', 0, 'unitsDone', 0, 'createdAt', ARGV[3], 'updatedAt', ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return ''
