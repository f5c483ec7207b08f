#!/usr/bin/env bash
# The benchmark of BENCHMARKS.md: our figures next to this machine's ceilings, in one run.
#   ceilings: `clearing bench-echo` (a minimal tonic server answering settlement-sized messages: the
#             gRPC ceiling under the same client) and `scripts/commit-ceiling.sh` (redis-benchmark running
#             our commit.lua by EVALSHA with a settlement's keys and arguments: the Redis ceiling);
#   ours:     `clearing serve` on the embedded store and on Redis (AOF, appendfsync always), 400
#             regions (5 seed + 395 synthetic), unary and stream modes.
# CPU per request of every process (the server, Redis) comes from /proc/<pid>/stat before and after each
# measured run, the load generator's from the shell's `times`; the members are registered by a warm-up
# run first, so the figures are the claims' alone.
# Prints the throughput table, then issue 32's four targets, each a ratio inside this one run.
# Usage: scripts/bench.sh [--members N] [claims] [clients]
#   --members N   members the claims are spread over (default 5000, or $MEMBERS); issue 32 reports both
#                 the default and --members 2000
#   CLEARING_BIN=path measures another build of `clearing`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
members=${MEMBERS:-5000}
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --members) members=${2:?--members needs a number}; shift 2 ;;
    --members=*) members=${1#*=}; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
claims=${args[0]:-40000}
clients=${args[1]:-32}
cargo build --release -q -p clearing -p region-adapter-server --bins
bin=${CLEARING_BIN:-target/release/clearing}
bench_dir
$bin bench-rules --regions 400 --out "$dir/rules" >/dev/null

addr_of() { listening_addr "$dir/$1.out"; }
warm() { # addr run-id: registers the members (and warms the caches) outside the measured runs
  $bin bench --addr "$1" --clients "$clients" --claims 200 --members "$members" --rules "$dir/rules" --run-id "$2" --msg-tag warm --name warmup >/dev/null 2>&1
}
run() { # name mode addr run-id server-pid [redis-pid]
  local name=$1 mode=$2 addr=$3 id=$4 line
  line=$(measured server="$5" redis="${6:-}" -- $bin bench --addr "$addr" --clients "$clients" --claims "$claims" --members "$members" \
    --rules "$dir/rules" --mode "$mode" --name "$name" --run-id "$id" --msg-tag "$mode" --skip-register)
  echo "$line" >> "$dir/results.txt"
  echo "  $mode: $(brief "$line")"
}

echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(lscpu | sed -n 's/^Model name: *//p')"
echo "== gRPC ceiling: bench-echo"
$bin bench-echo --listen 127.0.0.1:0 > "$dir/echo.out" 2>&1 & echo_pid=$!
echo_addr=$(addr_of echo)
warm "$echo_addr" e
run echo unary "$echo_addr" e $echo_pid
run echo stream "$echo_addr" e $echo_pid
kill $echo_pid; wait $echo_pid 2>/dev/null || true

echo "== clearing, embedded store"
RUST_LOG=warn $bin serve --plaintext --listen 127.0.0.1:0 --data-dir "$dir/data" --rules "$dir/rules" > "$dir/embedded.out" 2> "$dir/embedded.log" & emb_pid=$!
emb_addr=$(addr_of embedded)
warm "$emb_addr" m
run embedded unary "$emb_addr" m $emb_pid
run embedded stream "$emb_addr" m $emb_pid
kill $emb_pid; wait $emb_pid 2>/dev/null || true

echo "== clearing, Redis (AOF, appendfsync always)"
port=$(start_redis "$dir")
redis_pid=$(redis_pid "$port")
RUST_LOG=warn $bin serve --plaintext --store redis --redis-url "redis://127.0.0.1:$port" --listen 127.0.0.1:0 --rules "$dir/rules" > "$dir/redis.out" 2> "$dir/redis-serve.log" & red_pid=$!
red_addr=$(addr_of redis)
warm "$red_addr" r
run redis unary "$red_addr" r $red_pid "$redis_pid"
run redis stream "$red_addr" r $red_pid "$redis_pid"
kill $red_pid; wait $red_pid 2>/dev/null || true
# The average stored record of the run, so the ceiling stores as much.
redis-cli -p "$port" --scan --pattern '*:s:*' > "$dir/settlement-keys.txt"
rec_bytes=$(sed -n 1,200p "$dir/settlement-keys.txt" | while read -r k; do redis-cli -p "$port" hstrlen "$k" rec; done \
  | awk '{s += $1; n++} END {print (n ? int(s / n) : 1200)}')

echo "== Redis ceiling: commit.lua by EVALSHA with a settlement's keys and arguments (scripts/commit-ceiling.sh)"
scripts/commit-ceiling.sh "$port" "$rec_bytes" | tee "$dir/ceiling.txt"

echo
echo "== summary (${claims} claims + resends/reversals, ${clients} clients, ${members} members, 400 regions)"
python3 - "$dir/results.txt" "$dir/ceiling.txt" "$(getconf CLK_TCK)" "$members" <<'PY'
import sys
hz = int(sys.argv[3])
rows = {}
for line in open(sys.argv[1]):
    kv = dict(p.split("=", 1) for p in line.split()[1:])
    rows[(kv["name"], kv["mode"].lower())] = kv
ceil = dict(p.split("=", 1) for p in open(sys.argv[2]).read().split()[1:])
redis_script_us = float(ceil["redis_us_per_script"])
us = lambda kv, k: int(kv[k]) * 1e6 / hz / int(kv["ops"])
tp = lambda n, m: float(rows[(n, m)]["throughput"])
print(f"{'target':<10} {'mode':<7} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'p999 ms':>8} {'errors':>6} {'server µs/req':>14} {'redis µs/req':>13} {'generator µs/req':>17}")
for (name, mode), kv in rows.items():
    ms = lambda k: int(kv[k]) / 1000
    r = f"{us(kv, 'redis_ticks'):>13.0f}" if name == "redis" else f"{'':>13}"
    g = int(kv["client_ms"]) * 1000 / int(kv["ops"])
    print(f"{name:<10} {mode:<7} {float(kv['throughput']):>8.0f} {ms('p50_us'):>7.1f} {ms('p99_us'):>7.1f} {ms('p999_us'):>8.1f} {kv['errors']:>6} {us(kv, 'server_ticks'):>14.0f} {r} {g:>17.0f}")
print(f"{'commit.lua':<10} {'':<7} {float(ceil['scripts_per_s']):>8.0f} {'':>7} {'':>7} {'':>8} {'':>6} {'':>14} {redis_script_us:>13.1f}   (record {ceil['rec_bytes']} B)")
print()
met = lambda ok: "met" if ok else "NOT MET"
echo_us = us(rows[("echo", "unary")], "server_ticks")
r = us(rows[("redis", "unary")], "redis_ticks") / redis_script_us
print(f"1. Redis CPU per settlement / per bare commit-script run (unary): {r:.2f}×   target ≤ 2.5×: {met(r <= 2.5)}")
for store in ("redis", "embedded"):
    r = us(rows[(store, "unary")], "server_ticks") / echo_us
    print(f"2. service CPU per settlement / echo CPU per request ({store}, unary): {r:.2f}×   target ≤ 3×: {met(r <= 3)}")
for mode in ("unary", "stream"):
    e = tp("embedded", mode) / tp("redis", mode)
    print(f"3. embedded / Redis throughput ({mode}, {sys.argv[4]} members): {e:.2f}×   target ≥ 1 (no slower): {met(e >= 1)}")
u = tp("redis", "unary") / tp("echo", "unary")
p99 = int(rows[("redis", "unary")]["p99_us"]) / 1000
print(f"4. Redis unary throughput / echo unary: {u:.0%} with p99 {p99:.1f} ms   target ≥ 30 % and ≤ 15 ms: {met(u >= 0.30 and p99 <= 15)}")
for store in ("redis", "embedded"):
    s = tp(store, "stream") / tp(store, "unary")
    print(f"   {store} stream / unary throughput: {s:.2f}×   target ≥ 1.5×: {met(s >= 1.5)}")
PY
