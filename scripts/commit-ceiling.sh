#!/usr/bin/env bash
# The Redis ceiling of the commit path: `redis-benchmark` running our own commit.lua by EVALSHA with the
# keys and arguments of one settlement (a member with accumulators, recent visits, the msgid index, the
# window totals and journal, supervision's logged delta) and a stored record of REC_BYTES bytes (the
# average size of the records of the run measured before it, so the ceiling stores what we store).
# Prints `CEILING scripts_per_s=… redis_us_per_script=… rec_bytes=…`: Redis's own CPU per script run,
# from /proc/<pid>/stat around the run. CEILING_CLIENTS sets redis-benchmark's connections (default 50),
# CEILING_PIPELINE the scripts each connection sends per round trip (default 1).
# Usage: scripts/commit-ceiling.sh PORT [REC_BYTES] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
port=$1
rec_bytes=${2:-1200}
runs=${3:-200000}
clients=${CEILING_CLIENTS:-50}
pipeline=${CEILING_PIPELINE:-1}
pid=$(redis_pid "$port")
sha=$(redis-cli -p "$port" script load "$(cat clearing/store/src/redis/commit.lua)")
# The keys come from the store's own key module (`clearing bench-commit-keys`), never spelled here.
{ read -r member; read -ra keys; } < <(target/release/clearing bench-commit-keys)
# The member's account pays 300.00 per run: its balance must last every run (10^15 fen, far below 2^53),
# or the script answers BALANCE and writes nothing once it runs dry.
redis-cli -p "$port" hset "$member" f '{}' v 1 b 1000000000000000 >/dev/null
rec=$(head -c "$rec_bytes" /dev/zero | tr '\0' x)
# Every run must commit (a refused commit writes nothing and would flatter the ceiling): the journal list
# grows by one entry per committed script, checked after the run.
journal=${keys[4]}
j0=$(redis-cli -p "$port" llen "$journal")
t0=$(ticks "$pid")
rps=$(redis-benchmark -p "$port" -c "$clients" -P "$pipeline" -n "$runs" -r 100000000000 -q \
  EVALSHA "$sha" "${#keys[@]}" "${keys[@]}" \
  "$(printf '%064d' 0)" __rand_int__ "$rec" 2026-01-01 '' 0 1 "__rand_int__|421300|360100|H36010000001|1|112760|22310|30000" 7 \
  '' a:2024:general 50000 22310 1 -30000 '2026-01-05:360100,2026-01-09:360100' '' \
  "$(printf '202601\x1f360100|H36010000001\x1f421300|360100\x1f1,112760,4000,0,30000,22310,0\x1f')" '' '' 2>&1 \
  | tr '\r' '\n' | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -1)
t1=$(ticks "$pid")
committed=$(($(redis-cli -p "$port" llen "$journal") - j0))
if [ $((committed * 100)) -lt $((runs * 99)) ]; then
  echo "commit-ceiling: only $committed of $runs script runs committed; the ceiling would measure refusals" >&2
  exit 1
fi
python3 -c "import sys; t, hz, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]); print(f'CEILING scripts_per_s={sys.argv[4]} redis_us_per_script={t * 1e6 / hz / n:.1f} rec_bytes={sys.argv[5]}')" \
  "$((t1 - t0))" "$(getconf CLK_TCK)" "$runs" "$rps" "$rec_bytes"
