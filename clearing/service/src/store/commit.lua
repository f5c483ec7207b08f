-- One settlement commit, atomically, on one shard (every key shares the shard's hash tag).
-- Money is integer fen and changes only through HINCRBY; `tonumber` is used for comparisons of
-- values far below 2^53, where doubles are exact.
--
-- KEYS: 1 idempotency key, 2 new settlement, 3 shard's closed-window set, 4 window totals hash,
--       5 window journal list, 6 original settlement (reversal) or the new settlement again,
--       7.. member hashes (m of them), then the shard's pending supervision indicators of the visit's
--       month and the shard's flagged list of that month
-- ARGV: 1 content hash (hex), 2 setl_id, 3 settlement record (JSON), 4 clr_date,
--       5 closed days between today and clr_date (comma-separated, may be empty),
--       6 totals field prefix "<insured>|<mdtrt>", 7 count, 8 medfee, 9 fund, 10 acct,
--       11 "1" when reversing KEYS[6], 12 number of members m, 13 journal entry,
--       then per member 7 values: expected version ("" = any), accumulator prefix ("" = none),
--       deductible delta, fund delta, visits delta, balance delta, recent visits ("" = unchanged);
--       then supervision: k, k (indicator field, delta) pairs, flagged entry ("" = none), setl_id
--       whose flagged entry is removed ("" = none)
local idem = redis.call('GET', KEYS[1])
if idem == 'FENCED' then return {'FENCED'} end
if idem then
  local h, sid = string.match(idem, '^(%x+) (.+)$')
  if h ~= ARGV[1] then return {'MISMATCH'} end
  return {'REPLAYED', sid}
end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'TAKEN'} end
if redis.call('SISMEMBER', KEYS[3], ARGV[4]) == 1 then return {'WINDOW'} end
for d in string.gmatch(ARGV[5], '[^,]+') do
  if redis.call('SISMEMBER', KEYS[3], d) == 0 then return {'WINDOW'} end
end
if ARGV[11] == '1' then
  if redis.call('EXISTS', KEYS[6]) == 0 then return {'MISSING'} end
  if redis.call('HEXISTS', KEYS[6], 'rev') == 1 then return {'REVERSED'} end
end
local m = tonumber(ARGV[12])
for i = 0, m - 1 do
  local k = KEYS[7 + i]
  local a = 14 + i * 7
  if redis.call('EXISTS', k) == 0 then return {'CONFLICT'} end
  if ARGV[a] ~= '' and redis.call('HGET', k, 'v') ~= ARGV[a] then return {'CONFLICT'} end
  local delta = tonumber(ARGV[a + 5])
  if delta < 0 and tonumber(redis.call('HGET', k, 'b') or '0') + delta < 0 then return {'BALANCE'} end
end
for i = 0, m - 1 do
  local k = KEYS[7 + i]
  local a = 14 + i * 7
  redis.call('HINCRBY', k, 'v', 1)
  if ARGV[a + 1] ~= '' then
    redis.call('HINCRBY', k, ARGV[a + 1] .. ':d', ARGV[a + 2])
    redis.call('HINCRBY', k, ARGV[a + 1] .. ':f', ARGV[a + 3])
    redis.call('HINCRBY', k, ARGV[a + 1] .. ':n', ARGV[a + 4])
  end
  if ARGV[a + 5] ~= '0' then redis.call('HINCRBY', k, 'b', ARGV[a + 5]) end
  if ARGV[a + 6] ~= '' then redis.call('HSET', k, 'h', ARGV[a + 6]) end
end
if ARGV[11] == '1' then redis.call('HSET', KEYS[6], 'rev', ARGV[2]) end
redis.call('HSET', KEYS[2], 'rec', ARGV[3])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2])
redis.call('HINCRBY', KEYS[4], ARGV[6] .. '|n', ARGV[7])
redis.call('HINCRBY', KEYS[4], ARGV[6] .. '|m', ARGV[8])
redis.call('HINCRBY', KEYS[4], ARGV[6] .. '|f', ARGV[9])
redis.call('HINCRBY', KEYS[4], ARGV[6] .. '|a', ARGV[10])
redis.call('HINCRBY', KEYS[4], ARGV[6] .. '|e', 1)
redis.call('RPUSH', KEYS[5], ARGV[13])
local sv = 14 + m * 7
local nf = tonumber(ARGV[sv])
for j = 0, nf - 1 do
  redis.call('HINCRBY', KEYS[7 + m], ARGV[sv + 1 + j * 2], ARGV[sv + 2 + j * 2])
end
local flagged, unflag = ARGV[sv + 1 + nf * 2], ARGV[sv + 2 + nf * 2]
if flagged ~= '' then redis.call('HSET', KEYS[8 + m], ARGV[2], flagged) end
if unflag ~= '' then redis.call('HDEL', KEYS[8 + m], unflag) end
return {'COMMITTED'}
