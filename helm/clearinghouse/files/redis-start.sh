#!/bin/sh
# Starts redis-server after repairing an append-only file that a crash cut part-way through a write.
#
#   redis-start.sh DIR [redis-server arguments...]      (runs: redis-server arguments... --dir DIR)
#
# Why: a SIGKILL or power loss during Redis's write() of a script's effects (MULTI ... EXEC) can leave
# the AOF ending inside that block. With `aof-load-truncated yes` (Redis's default) the loader keeps the
# commands up to the cut, inside the MULTI, and the next restart replays half of an unacknowledged
# commit. The clearinghouse therefore runs Redis with `aof-load-truncated no` (clearing refuses any
# other setting), so such a Redis refuses to load; this script makes that restart need no person:
# `redis-check-aof --fix` cuts the file back to before the incomplete MULTI (nothing cut was ever
# acknowledged: Redis answers only after the whole write is fsynced), says what it cut, and Redis starts.
# Damage that is not a short final write is not "repaired": the script stops and says so.
# Used by the Helm chart's Redis and by the test harness (tests/src/lib.rs), so both run this code.
set -eu
dir=$1
shift
aof=""
for m in "$dir"/appendonlydir/*.manifest; do
  if [ -f "$m" ]; then aof=$m; fi
done
if [ -z "$aof" ] && [ -f "$dir/appendonly.aof" ]; then aof="$dir/appendonly.aof"; fi
if [ -n "$aof" ] && ! report=$(redis-check-aof "$aof" 2>&1); then
  echo "redis-start: $aof ends part-way through a write (a crash while writing); cutting it back to its last complete transaction"
  echo "$report" | grep -E 'AOF analyzed|not valid|Expected|EOF|MULTI' || true
  if ! fixed=$(echo y | redis-check-aof --fix "$aof" 2>&1); then
    echo "$fixed"
    echo "redis-start: redis-check-aof could not repair $aof; this is not a short final write: a person must look at it (keep a copy first)"
    exit 1
  fi
  echo "$fixed" | grep -E 'shrink|truncated|valid' || true
  echo "redis-start: repaired; the cut bytes were never acknowledged to any client"
fi
exec redis-server "$@" --dir "$dir"
