-- KEYS: status. ARGV: state, now, channel, jobId. Returns the state after the call ('gone' if unknown).
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return 'gone' end
if st == 'completed' or st == 'failed' then return st end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updatedAt', ARGV[2])
if st ~= ARGV[1] then announce(ARGV[3], ARGV[4], KEYS[1], 'running') end
return ARGV[1]
