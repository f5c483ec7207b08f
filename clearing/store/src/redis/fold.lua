-- Folding a shard's pending sums into the wide sums, step 1 (on the shard): move the pending key into
-- the shard's single in-flight fold, tagged with the next sequence number. Does nothing while a fold is
-- in flight (it must be applied and deleted first), so folds of a shard are applied strictly in order.
-- The pending key is a hash of sums (window totals), tagged with a `_seq` field, or a log (a list of
-- supervision deltas), tagged with a first element `#<seq>`.
-- KEYS: 1 pending key, 2 in-flight fold, 3 sequence counter.
if redis.call('EXISTS', KEYS[2]) == 1 then return 'INFLIGHT' end
if redis.call('EXISTS', KEYS[1]) == 0 then return 'EMPTY' end
local seq = redis.call('INCR', KEYS[3])
redis.call('RENAME', KEYS[1], KEYS[2])
if redis.call('TYPE', KEYS[2]).ok == 'list' then
  redis.call('LPUSH', KEYS[2], '#' .. seq)
else
  redis.call('HSET', KEYS[2], '_seq', seq)
end
return 'FOLDED'
