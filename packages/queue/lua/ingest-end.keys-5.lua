-- KEYS: status, plan, units, finished, lock. ARGV: jobId, now, ttl, state, version, code, message, channel.
local st = redis.call('HGET', KEYS[1], 'state')
if not st or st == 'completed' or st == 'failed' then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[4], 'updatedAt', ARGV[2])
if ARGV[4] == 'completed' then
  redis.call('HSET', KEYS[1], 'done', redis.call('HGET', KEYS[1], 'total'), 'unitsDone', redis.call('HGET', KEYS[1], 'units'), 'version', ARGV[5])
else
  redis.call('HSET', KEYS[1], 'code', ARGV[6], 'message', ARGV[7])
end
if ARGV[4] == 'completed' then announce(ARGV[8], ARGV[1], KEYS[1], 'completed') else announce(ARGV[8], ARGV[1], KEYS[1], 'failed', ARGV[6], ARGV[7]) end
if redis.call('GET', KEYS[5]) == ARGV[1] then redis.call('DEL', KEYS[5]) end
redis.call('DEL', KEYS[3], KEYS[4])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
