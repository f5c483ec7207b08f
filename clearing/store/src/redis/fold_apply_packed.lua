-- Folding supervision indicators, step 2 (on the month's slot): add one shard's fold to the month-wide
-- sums exactly once. Each entity (an institution or a region pair) is one hash field holding all its
-- sums, `measure=value,…`, so a month is read as one field per entity rather than one per measure.
-- Values are integers far below 2^53 (fen of one entity's month), exact in Lua's doubles.
-- KEYS: 1 applied-sequence hash (shard → last applied seq), 2.. bucket hashes.
-- ARGV: 1 shard, 2 seq, then (bucket index from 1, entity, `measure=delta,…`) triples.
local applied = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local seq = tonumber(ARGV[2])
if applied >= seq then return 'DONE' end
if applied ~= seq - 1 then return 'GAP' end
for i = 3, #ARGV, 3 do
  local k = KEYS[1 + tonumber(ARGV[i])]
  local sums = {}
  local cur = redis.call('HGET', k, ARGV[i + 1])
  if cur then
    for m, v in string.gmatch(cur, '([^=,]+)=(-?%d+)') do sums[m] = tonumber(v) end
  end
  for m, v in string.gmatch(ARGV[i + 2], '([^=,]+)=(-?%d+)') do sums[m] = (sums[m] or 0) + tonumber(v) end
  local out = {}
  for m, v in pairs(sums) do
    if v ~= 0 then out[#out + 1] = m .. '=' .. string.format('%d', v) end
  end
  if #out == 0 then redis.call('HDEL', k, ARGV[i + 1]) else redis.call('HSET', k, ARGV[i + 1], table.concat(out, ',')) end
end
redis.call('HSET', KEYS[1], ARGV[1], seq)
return 'APPLIED'
