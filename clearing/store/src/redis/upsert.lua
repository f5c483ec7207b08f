-- A member upsert, atomically: registry facts replaced, version bumped, balance set and/or credited.
-- KEYS: 1 member hash. ARGV: 1 facts (JSON), 2 balance to set in fen ("" = keep), 3 credit in fen.
-- A closed account (field x) takes no change: answered as it is, the caller refuses.
if redis.call('HEXISTS', KEYS[1], 'x') == 1 then return redis.call('HGETALL', KEYS[1]) end
redis.call('HSET', KEYS[1], 'f', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'v', 1)
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'b', ARGV[2]) end
redis.call('HINCRBY', KEYS[1], 'b', ARGV[3])
return redis.call('HGETALL', KEYS[1])
