-- KEYS: lock, status. ARGV: jobId, ttl. Extends both while the job still holds the lock.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return 1
