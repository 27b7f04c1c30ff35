-- KEYS: reservations hash, publish generation. ARGV: holder, published ('1': the tenant's usage
-- changed, so a reservation checked against the old usage must read it again).
redis.call('HDEL', KEYS[1], ARGV[1])
if ARGV[2] == '1' then redis.call('INCR', KEYS[2]) end
return 1
