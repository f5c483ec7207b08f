-- Folding a shard's window totals into the window-wide totals, step 1 (on the shard): move the
-- pending totals into the shard's single in-flight fold, tagged with the next sequence number. Does
-- nothing while a fold is in flight (it must be applied and deleted first), so folds of a shard are
-- applied strictly in order.
-- KEYS: 1 pending totals hash, 2 in-flight fold hash, 3 sequence counter.
if redis.call('EXISTS', KEYS[2]) == 1 then return 'INFLIGHT' end
if redis.call('EXISTS', KEYS[1]) == 0 then return 'EMPTY' end
local seq = redis.call('INCR', KEYS[3])
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[2], '_seq', seq)
return 'FOLDED'
