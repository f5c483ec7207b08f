-- Resolving a stale hold: on the patient's shard, either find the commit that the hold belongs to, or
-- make sure it can never happen (fence the idempotency key for a while). KEYS: 1 idempotency key.
-- ARGV: 1 the hold's settlement id, 2 fence lifetime (s). Returns 'COMMITTED' or 'ABANDONED'.
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], 'FENCED', 'EX', ARGV[2])
  return 'ABANDONED'
end
local _, sid = string.match(v, '^(%x+) (.+)$')
if sid == ARGV[1] then return 'COMMITTED' end
return 'ABANDONED'
