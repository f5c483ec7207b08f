-- Sums one chunk of a window journal (entries `setl_id|insured|mdtrt|count|medfee|fund|acct`), so that
-- netting can check the totals against the entries themselves, read by a path of its own.
-- KEYS: 1 journal list. ARGV: 1 first index, 2 last index.
-- Returns {entries, count, medfee, fund, acct} of the chunk. A chunk's sums stay far below 2^53 (where
-- Lua's doubles stop being exact): 10,000 entries of at most 10^10 fen each.
local n, c, m, f, a = 0, 0, 0, 0, 0
for _, e in ipairs(redis.call('LRANGE', KEYS[1], ARGV[1], ARGV[2])) do
  local ec, em, ef, ea = string.match(e, '|(-?%d+)|(-?%d+)|(-?%d+)|(-?%d+)$')
  if not ec then return redis.error_reply('ERR journal entry unreadable') end
  n = n + 1
  c = c + tonumber(ec)
  m = m + tonumber(em)
  f = f + tonumber(ef)
  a = a + tonumber(ea)
end
return {n, c, m, f, a}
