-- Cross-shard family pay, step 3: finalize (the settlement committed: apply a deferred credit) or
-- release (it did not: refund a reserved debit). Idempotent: a missing hold is a no-op.
-- KEYS: 1 payer member, 2 hold, 3 shard's hold set. ARGV: 1 "finalize" | "release", 2 delta, 3 hold id.
if redis.call('EXISTS', KEYS[2]) == 0 then return 'GONE' end
local delta = tonumber(ARGV[2])
if ARGV[1] == 'finalize' and delta > 0 then
  redis.call('HINCRBY', KEYS[1], 'b', ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'v', 1)
elseif ARGV[1] == 'release' and delta < 0 then
  redis.call('HINCRBY', KEYS[1], 'b', -delta)
  redis.call('HINCRBY', KEYS[1], 'v', 1)
end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[3])
return 'DONE'
