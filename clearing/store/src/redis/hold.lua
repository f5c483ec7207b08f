-- Cross-shard family pay on Redis Cluster, step 1: on the payer's shard, check the payer's version and
-- balance, reserve a debit at once (so two claims cannot spend one balance), and record a hold that
-- step 3 finalizes or releases. A credit (a reversal) is only recorded here and applied on finalize.
-- KEYS: 1 payer member, 2 hold, 3 shard's hold set.
-- ARGV: 1 expected version ("" = any), 2 balance delta (fen), 3 hold record (JSON), 4 hold id.
if redis.call('EXISTS', KEYS[2]) == 1 then return 'HELD' end
if redis.call('EXISTS', KEYS[1]) == 0 then return 'CONFLICT' end
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 'CONFLICT' end
if redis.call('HEXISTS', KEYS[1], 'x') == 1 then return 'CLOSED' end
local delta = tonumber(ARGV[2])
if delta < 0 then
  if tonumber(redis.call('HGET', KEYS[1], 'b') or '0') + delta < 0 then return 'BALANCE' end
  redis.call('HINCRBY', KEYS[1], 'b', ARGV[2])
end
redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('SET', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
return 'OK'
