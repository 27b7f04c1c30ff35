-- KEYS: status, units, finished, lock, plan. ARGV: unit, unitDone, finished, now, ttl, jobId, channel.
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'gone', 0, 0} end
local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
if st == 'completed' or st == 'failed' then return {st, tonumber(redis.call('HGET', KEYS[1], 'done') or '0'), total} end
local old = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local new = tonumber(ARGV[2])
local done
if new > old then
  redis.call('HSET', KEYS[2], ARGV[1], new)
  done = redis.call('HINCRBY', KEYS[1], 'done', new - old)
  announce(ARGV[7], ARGV[6], KEYS[1], 'running')
else
  done = tonumber(redis.call('HGET', KEYS[1], 'done') or '0')
end
if ARGV[3] == '1' then
  redis.call('SADD', KEYS[3], ARGV[1])
  redis.call('HSET', KEYS[1], 'unitsDone', redis.call('SCARD', KEYS[3]))
end
redis.call('HSET', KEYS[1], 'updatedAt', ARGV[4])
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
redis.call('EXPIRE', KEYS[5], ARGV[5])
if redis.call('GET', KEYS[4]) == ARGV[6] then redis.call('EXPIRE', KEYS[4], ARGV[5]) end
return {st, done, total}
