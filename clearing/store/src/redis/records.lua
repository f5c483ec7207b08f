-- Compare-and-set of several versioned records of one shard (visits), all or nothing.
-- KEYS[1..n]: the records' hashes {v = version, d = data}; KEYS[n+1]: the shard's index of record names.
-- ARGV, four per record: expected version ("0" = must be absent), op ("s" set / "d" delete), the
-- record's name (for the index), data.
-- Returns 1 when written, 0 when any version differed (nothing written).
local n = #KEYS - 1
local index = KEYS[n + 1]
for i = 1, n do
  local v = redis.call('HGET', KEYS[i], 'v') or '0'
  if v ~= ARGV[4 * i - 3] then
    return 0
  end
end
for i = 1, n do
  local expected, op, name, data = ARGV[4 * i - 3], ARGV[4 * i - 2], ARGV[4 * i - 1], ARGV[4 * i]
  if op == 'd' then
    redis.call('DEL', KEYS[i])
    redis.call('SREM', index, name)
  else
    redis.call('HSET', KEYS[i], 'v', tostring(tonumber(expected) + 1), 'd', data)
    redis.call('SADD', index, name)
  end
end
return 1
