#!/usr/bin/env bash
# The benchmark of BENCHMARKS.md: our figures next to this machine's ceilings, in one run.
#   ceilings: `clearing bench-echo` (a minimal tonic server answering settlement-sized messages: the
#             gRPC ceiling under the same client) and `redis-benchmark` running the commit script
#             (commit.lua by EVALSHA with a settlement's keys and arguments: the Redis ceiling);
#   ours:     `clearing serve` on the embedded store and on Redis (AOF, appendfsync always), 400
#             regions (5 seed + 395 synthetic), unary and stream modes.
# Prints a table with each figure as a ratio of its ceiling. Usage: scripts/bench.sh [claims] [clients]
set -euo pipefail
cd "$(dirname "$0")/.."
claims=${1:-40000}
clients=${2:-32}
members=${MEMBERS:-5000}
cargo build --release -q -p clearing -p region-adapter-server --bins
bin=target/release/clearing
dir=$(mktemp -d)
trap 'redis-cli -p "${port:-0}" shutdown nosave >/dev/null 2>&1 || true; kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$dir"' EXIT
$bin bench-rules --regions 400 --out "$dir/rules" >/dev/null

addr_of() { until grep -q listening "$dir/$1.out" 2>/dev/null; do sleep 0.1; done; sed -n 's/.* listening on //p' "$dir/$1.out"; }
run() { # name mode addr [extra…]
  local name=$1 mode=$2 addr=$3; shift 3
  $bin bench --addr "$addr" --clients "$clients" --claims "$claims" --members "$members" --rules "$dir/rules" \
    --mode "$mode" --name "$name" --run-id "${name:0:1}${mode:0:1}" "$@" 2>/dev/null | tee -a "$dir/results.txt" | grep -E "throughput|latency|errors"
}

echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(lscpu | sed -n 's/^Model name: *//p')"
echo "== gRPC ceiling: bench-echo"
$bin bench-echo --listen 127.0.0.1:0 > "$dir/echo.out" 2>&1 & echo_pid=$!
echo_addr=$(addr_of echo)
run echo unary "$echo_addr"
run echo stream "$echo_addr"
kill $echo_pid; wait $echo_pid 2>/dev/null || true

echo "== clearing, embedded store"
$bin serve --plaintext --listen 127.0.0.1:0 --data-dir "$dir/data" --rules "$dir/rules" > "$dir/embedded.out" 2> "$dir/embedded.log" & emb_pid=$!
emb_addr=$(addr_of embedded)
run embedded unary "$emb_addr"
run embedded stream "$emb_addr"
kill $emb_pid; wait $emb_pid 2>/dev/null || true

echo "== clearing, Redis (AOF, appendfsync always)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes --appendfsync always --save '' --daemonize yes --logfile "$dir/redis.log"
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
$bin serve --plaintext --store redis --redis-url "redis://127.0.0.1:$port" --listen 127.0.0.1:0 --rules "$dir/rules" > "$dir/redis.out" 2> "$dir/redis-serve.log" & red_pid=$!
red_addr=$(addr_of redis)
run redis unary "$red_addr"
run redis stream "$red_addr"
kill $red_pid; wait $red_pid 2>/dev/null || true

echo "== Redis ceiling: redis-benchmark, commit.lua by EVALSHA with a settlement's keys and arguments (supervision's indicators and recent visits included)"
sha=$(redis-cli -p "$port" script load "$(cat clearing/service/src/store/commit.lua)")
redis-cli -p "$port" hset '{ch:07}:m:421300:BENCH' f '{}' v 1 b 100000000 >/dev/null
rec=$(printf '{"setl_id":"x","msgid":"x","clr_date":"2026-01-01","insuplc_admdvs":"421300","mdtrt_admdvs":"360100","message":"%0900d","content_hash":"%064d","totals":{"count":1,"medfee_fen":1,"fund_fen":1,"acct_fen":1},"orig_setl_id":null,"reversed_by":null}' 0 0)
ceiling=$(redis-benchmark -p "$port" -c 50 -n 200000 -r 100000000000 -q \
  EVALSHA "$sha" 9 '{ch:07}:i:__rand_int__' '{ch:07}:s:__rand_int__' '{ch:07}:closed' '{ch:07}:w:2026-01-01' '{ch:07}:j:2026-01-01' '{ch:07}:s:__rand_int__' '{ch:07}:m:421300:BENCH' '{ch:07}:sv:202601' '{ch:07}:fl:202601' \
  "$(printf '%064d' 0)" __rand_int__ "$rec" 2026-01-01 '' '421300|360100' 1 112760 22310 30000 0 1 "__rand_int__|421300|360100|1|112760|22310|30000" '' a:2024:general 50000 22310 1 -30000 '2026-01-05:360100,2026-01-09:360100' \
  10 'i|360100|H36010000001|n' 1 'i|360100|H36010000001|m' 112760 'i|360100|H36010000001|s' 4000 'i|360100|H36010000001|a' 30000 'i|360100|H36010000001|f' 22310 \
  'p|421300|360100|n' 1 'p|421300|360100|m' 112760 'p|421300|360100|s' 4000 'p|421300|360100|a' 30000 'p|421300|360100|f' 22310 '' '' 2>&1 \
  | tr '\r' '\n' | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -1)
echo "  commit.lua: ${ceiling} scripts/s"

echo
echo "== summary (${claims} claims + resends/reversals, ${clients} clients, ${members} members, 400 regions)"
python3 - "$dir/results.txt" "$ceiling" <<'PY'
import re, sys
rows = {}
for line in open(sys.argv[1]):
    if line.startswith("RESULT"):
        kv = dict(p.split("=", 1) for p in line.split()[1:])
        rows[(kv["name"], kv["mode"].lower())] = kv
redis_ceiling = float(sys.argv[2] or 0)
print(f"{'target':<10} {'mode':<7} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'p999 ms':>8} {'errors':>6}  vs ceiling")
for (name, mode), kv in rows.items():
    t = float(kv["throughput"])
    ratios = []
    if name != "echo" and ("echo", mode) in rows:
        ratios.append(f"{t / float(rows[('echo', mode)]['throughput']):.0%} of gRPC echo ({mode})")
    if name == "redis" and redis_ceiling:
        ratios.append(f"{t / redis_ceiling:.0%} of the commit-script ceiling ({redis_ceiling:.0f}/s)")
    ms = lambda k: int(kv[k]) / 1000
    print(f"{name:<10} {mode:<7} {t:>8.0f} {ms('p50_us'):>7.1f} {ms('p99_us'):>7.1f} {ms('p999_us'):>8.1f} {kv['errors']:>6}  {'; '.join(ratios)}")
PY
