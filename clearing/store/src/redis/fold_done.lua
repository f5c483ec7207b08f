-- Folding, step 3 (on the shard): drop the in-flight fold once applied, only if it is still the one
-- that was applied (another folder may have started the next one). KEYS: 1 fold. ARGV: 1 seq.
local tag
if redis.call('TYPE', KEYS[1]).ok == 'list' then
  tag = redis.call('LINDEX', KEYS[1], 0) == '#' .. ARGV[1]
else
  tag = redis.call('HGET', KEYS[1], '_seq') == ARGV[1]
end
if tag then redis.call('DEL', KEYS[1]) return 1 end
return 0
