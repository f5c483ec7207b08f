-- Folding, step 2 (on the window-wide slot): add one shard's fold to the window totals exactly once.
-- The window totals are split over several hashes of the same slot (buckets) so that reading them can
-- overlap: each field always goes to the same bucket.
-- KEYS: 1 applied-sequence hash (shard → last applied seq), 2.. bucket hashes.
-- ARGV: 1 shard, 2 seq, then (bucket index from 1, field, value) triples.
local applied = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local seq = tonumber(ARGV[2])
if applied >= seq then return 'DONE' end
if applied ~= seq - 1 then return 'GAP' end
for i = 3, #ARGV, 3 do
  redis.call('HINCRBY', KEYS[1 + tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2])
end
redis.call('HSET', KEYS[1], ARGV[1], seq)
return 'APPLIED'
