-- Records one nonce of one paasid (auth.rs). KEYS: 1 the paasid's sorted set, nonce → expiry (ms).
-- ARGV: 1 nonce, 2 time to live (ms), 3 the paasid's bound.
-- Returns 1 first use, 0 replayed (still in use), -1 the paasid has its bound of nonces in use.
-- Redis's own clock, so that replicas of the gateway agree on what has expired.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return -1 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
