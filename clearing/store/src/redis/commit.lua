-- One settlement commit, atomically, on one shard (every key shares the shard's hash tag).
-- Money is integer fen and changes only through HINCRBY; `tonumber` is used for comparisons of
-- values far below 2^53, where doubles are exact.
--
-- KEYS: 1 idempotency key, 2 new settlement, 3 shard's closed-window set, 4 the window's pending log
--       (journal entries not folded into the window totals yet), 5 window journal list, 6 original
--       settlement (reversal) or the new settlement again,
--       7 the msgid's index (which shard used it; KEYS[1] again when ARGV[9] is ""),
--       8.. member hashes (m of them), then the shard's supervision log of the visit's month (a list of
--       deltas, folded into the month's indicators in the background) and the shard's flagged list of
--       that month, then the msgid's idempotency key as written before issue 29 (KEYS[1] again when
--       there is none); it is only read
-- ARGV: 1 content hash (hex), 2 setl_id, 3 settlement record (stored form, see record.rs), 4 clr_date,
--       5 closed days between today and clr_date (comma-separated, may be empty),
--       6 "1" when reversing KEYS[6], 7 number of members m, 8 journal entry,
--       9 the shard claiming the msgid in KEYS[7] ("" = claimed before the script: on a cluster the
--       index lives in another slot), then per member 8 values: expected version ("" = any),
--       accumulator prefix ("" = none), deductible delta, fund delta, visits delta, balance delta,
--       recent visits ("" = unchanged), account closure ("" = none; a member whose account is closed,
--       field `x`, takes no other commit);
--       then supervision: the logged delta ("" = none), flagged entry ("" = none), setl_id whose
--       flagged entry is removed ("" = none)
local idem = redis.call('GET', KEYS[1])
if idem == 'FENCED' then return {'FENCED'} end
if not idem then
  local legacy = redis.call('GET', KEYS[10 + tonumber(ARGV[7])])
  if legacy ~= 'FENCED' then idem = legacy end
end
if idem then
  local h, sid = string.match(idem, '^(%x+) (.+)$')
  if h ~= ARGV[1] then return {'MISMATCH'} end
  return {'REPLAYED', sid}
end
-- A msgid another member's shard used (one Redis: every shard is in reach) is someone else's request.
if ARGV[9] ~= '' then
  local owner = redis.call('GET', KEYS[7])
  if owner and owner ~= ARGV[9] then return {'MISMATCH'} end
end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'TAKEN'} end
if redis.call('SISMEMBER', KEYS[3], ARGV[4]) == 1 then return {'WINDOW'} end
for d in string.gmatch(ARGV[5], '[^,]+') do
  if redis.call('SISMEMBER', KEYS[3], d) == 0 then return {'WINDOW'} end
end
if ARGV[6] == '1' then
  if redis.call('EXISTS', KEYS[6]) == 0 then return {'MISSING'} end
  if redis.call('HEXISTS', KEYS[6], 'rev') == 1 then return {'REVERSED'} end
end
local m = tonumber(ARGV[7])
for i = 0, m - 1 do
  local k = KEYS[8 + i]
  local a = 10 + i * 8
  if redis.call('EXISTS', k) == 0 then return {'CONFLICT'} end
  if ARGV[a] ~= '' and redis.call('HGET', k, 'v') ~= ARGV[a] then return {'CONFLICT'} end
  if redis.call('HEXISTS', k, 'x') == 1 then return {'CLOSED'} end
  local delta = tonumber(ARGV[a + 5])
  if delta < 0 and tonumber(redis.call('HGET', k, 'b') or '0') + delta < 0 then return {'BALANCE'} end
end
for i = 0, m - 1 do
  local k = KEYS[8 + i]
  local a = 10 + i * 8
  redis.call('HINCRBY', k, 'v', 1)
  if ARGV[a + 1] ~= '' then
    redis.call('HINCRBY', k, ARGV[a + 1] .. ':d', ARGV[a + 2])
    redis.call('HINCRBY', k, ARGV[a + 1] .. ':f', ARGV[a + 3])
    redis.call('HINCRBY', k, ARGV[a + 1] .. ':n', ARGV[a + 4])
  end
  if ARGV[a + 5] ~= '0' then redis.call('HINCRBY', k, 'b', ARGV[a + 5]) end
  if ARGV[a + 6] ~= '' then redis.call('HSET', k, 'h', ARGV[a + 6]) end
  if ARGV[a + 7] ~= '' then redis.call('HSET', k, 'x', ARGV[a + 7]) end
end
if ARGV[6] == '1' then redis.call('HSET', KEYS[6], 'rev', ARGV[2]) end
redis.call('HSET', KEYS[2], 'rec', ARGV[3])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2])
if ARGV[9] ~= '' then redis.call('SET', KEYS[7], ARGV[9]) end
-- The window totals are folded from the pending log in the background (one RPUSH here rather than
-- five HINCRBYs into a small hash, which Redis searches linearly).
redis.call('RPUSH', KEYS[4], ARGV[8])
redis.call('RPUSH', KEYS[5], ARGV[8])
local sv = 10 + m * 8
if ARGV[sv] ~= '' then redis.call('RPUSH', KEYS[8 + m], ARGV[sv]) end
local flagged, unflag = ARGV[sv + 1], ARGV[sv + 2]
if flagged ~= '' then redis.call('HSET', KEYS[9 + m], ARGV[2], flagged) end
if unflag ~= '' then redis.call('HDEL', KEYS[9 + m], unflag) end
return {'COMMITTED'}
