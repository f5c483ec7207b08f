-- One month's personal-account credit of one member, at most once: the balance grows and the month is
-- recorded in one step, so a run cut short and run again credits nobody twice.
-- KEYS: 1 member hash. ARGV: 1 month (YYYYMM), 2 amount in fen.
-- Returns {-1} when the member does not exist, {-2} when its account is closed, {0, amount} when the month was credited before,
-- {1, new balance} when credited now.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1, 0}
end
-- A closed account (field x) takes no credit.
if redis.call('HEXISTS', KEYS[1], 'x') == 1 then
  return {-2, 0}
end
local field = 'c:' .. ARGV[1]
local before = redis.call('HGET', KEYS[1], field)
if before then
  return {0, tonumber(before)}
end
redis.call('HSET', KEYS[1], field, ARGV[2])
redis.call('HINCRBY', KEYS[1], 'v', 1)
return {1, redis.call('HINCRBY', KEYS[1], 'b', ARGV[2])}
