-- Folding, step 2 (on the window-wide slot): add one shard's fold to the window totals exactly once.
-- KEYS: 1 window totals hash, 2 applied-sequence hash (shard → last applied seq).
-- ARGV: 1 shard, 2 seq, then field, value pairs.
local applied = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local seq = tonumber(ARGV[2])
if applied >= seq then return 'DONE' end
if applied ~= seq - 1 then return 'GAP' end
for i = 3, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[2], ARGV[1], seq)
return 'APPLIED'
