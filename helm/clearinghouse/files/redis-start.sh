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
# Only the file Redis was appending to can end part-way through a write: the last incremental file of
# the manifest Redis itself reads (appenddirname and appendfilename at their defaults; a temp-*.manifest
# left by an interrupted rewrite is not it). Base files and earlier incremental files were complete when
# Redis moved past them, so checking the last one alone keeps a restart fast however large the AOF.
aof=""
manifest="$dir/appendonlydir/appendonly.aof.manifest"
if [ -f "$manifest" ]; then
  last=$(sed -n 's/^file \([^ ]*\) seq [0-9]* type i$/\1/p' "$manifest" | tail -n 1)
  if [ -n "$last" ] && [ -f "$dir/appendonlydir/$last" ]; then aof="$dir/appendonlydir/$last"; fi
elif [ -f "$dir/appendonly.aof" ]; then
  aof="$dir/appendonly.aof"
fi
if [ -n "$aof" ] && ! report=$(redis-check-aof "$aof" 2>&1); then
  # Only a file that ends early (the last write cut short) is repaired: that is all a crash can do to
  # it, and nothing cut was acknowledged. Any other damage (a format error in the middle) would make
  # --fix drop acknowledged commits after it: that needs a person.
  # Where the check stopped: a cut file stops at its end (a short read, EOF inside a MULTI, or a line
  # without its "\r\n" in the last bytes); a format error anywhere else is damage a crash does not do.
  at=$(printf '%s\n' "$report" | sed -n 's/^0x *\([0-9a-fA-F]*\):.*/\1/p' | tail -n 1)
  size=$(printf '%s\n' "$report" | sed -n 's/^AOF analyzed: filename=[^,]*, size=\([0-9]*\),.*/\1/p' | tail -n 1)
  short=yes
  if [ -n "$at" ] && ! printf '%s\n' "$report" | grep -qE 'Expected to read [0-9]+ bytes, got [0-9]+ bytes|Reached EOF'; then
    if [ -z "$size" ] || [ $((size - 0x$at)) -gt 32 ]; then short=no; fi
  fi
  if [ "$short" != yes ]; then
    printf '%s\n' "$report"
    echo "redis-start: $aof is damaged in a way a crash does not cause; not repairing it: a person must look at it (keep a copy first)"
    exit 1
  fi
  echo "redis-start: $aof ends part-way through a write (a crash while writing); cutting it back to its last complete transaction"
  printf '%s\n' "$report" | grep -E 'AOF analyzed|not valid|Expected|EOF|MULTI' || true
  if ! fixed=$(echo y | redis-check-aof --fix "$aof" 2>&1); then
    printf '%s\n' "$fixed"
    echo "redis-start: redis-check-aof could not repair $aof; this is not a short final write: a person must look at it (keep a copy first)"
    exit 1
  fi
  printf '%s\n' "$fixed" | grep -E 'shrink|truncated|valid' || true
  echo "redis-start: repaired; the cut bytes were never acknowledged to any client"
fi
exec redis-server "$@" --dir "$dir"
