#!/usr/bin/env bash
# The national gateway's added cost per settlement, next to direct gRPC, in one run (BENCHMARKS.md).
#   `clearing serve` (embedded store, or Redis with STORE=redis) with 400 regions, and
#   `national-gateway serve` in front of it; the same workload (`clearing bench`) sent alternately
#   direct over gRPC (unary) and as signed 2207/2208 calls through the gateway (HTTP/1.1 keep-alive),
#   ROUNDS times each. CPU per request of each process from /proc/<pid>/stat (utime + stime) around
#   each run. Usage: scripts/bench-gateway.sh [claims per run] [clients]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
claims=${1:-10000}
clients=${2:-32}
members=${MEMBERS:-2000}
rounds=${ROUNDS:-2}
store=${STORE:-embedded}
cargo build --release -q -p clearing -p national-gateway --bins
bin=target/release/clearing
gw=target/release/national-gateway
bench_dir
$bin bench-rules --regions 400 --out "$dir/rules" --paas-out "$dir/paas.toml" >/dev/null

addr_of() { listening_addr "$dir/$1.out"; }

store_args=(--data-dir "$dir/data")
if [ "$store" = redis ]; then
  port=$(start_redis "$dir")
  store_args=(--store redis --redis-url "redis://127.0.0.1:$port")
fi
RUST_LOG=warn $bin serve --plaintext --listen 127.0.0.1:0 --rules "$dir/rules" "${store_args[@]}" > "$dir/clearing.out" 2> "$dir/clearing.log" & ch_pid=$!
ch_addr=$(addr_of clearing)
RUST_LOG=warn $gw serve --plaintext --listen 127.0.0.1:0 --clearing "http://$ch_addr" --paas "$dir/paas.toml" > "$dir/gateway.out" 2> "$dir/gateway.log" & gw_pid=$!
gw_addr=$(addr_of gateway)

common=(--addr "$ch_addr" --clients "$clients" --members "$members" --rules "$dir/rules" --run-id g)
echo "== machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); store: $store; $claims claims per run, $clients clients, $members members, 400 regions"
# Members once (not measured).
$bin bench "${common[@]}" --claims 200 --msg-tag w --name warmup >/dev/null 2>&1
for r in $(seq 1 "$rounds"); do
  for mode in unary gateway; do
    line=$(measured clearing=$ch_pid gateway=$gw_pid -- $bin bench "${common[@]}" --claims "$claims" --skip-register --mode "$mode" \
      --gateway "http://$gw_addr" --msg-tag "$mode$r" --name "$mode")
    echo "$line" >> "$dir/results.txt"
    echo "  round $r $mode: $(brief "$line")"
  done
done

python3 - "$dir/results.txt" "$(getconf CLK_TCK)" <<'PY'
import sys
hz = int(sys.argv[2])
rows = {}
for line in open(sys.argv[1]):
    kv = dict(p.split("=", 1) for p in line.split()[1:])
    rows.setdefault(kv["name"], []).append(kv)
def avg(name, f):
    return sum(f(kv) for kv in rows[name]) / len(rows[name])
us = lambda ticks, ops: ticks * 1e6 / hz / ops
print()
print(f"{'path':<9} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'clearing µs/req':>16} {'gateway µs/req':>15} {'total µs/req':>13}")
for name in ["unary", "gateway"]:
    t = avg(name, lambda kv: float(kv["throughput"]))
    p50 = avg(name, lambda kv: int(kv["p50_us"])) / 1000
    p99 = avg(name, lambda kv: int(kv["p99_us"])) / 1000
    err = sum(int(kv["errors"]) for kv in rows[name])
    c = avg(name, lambda kv: us(int(kv["clearing_ticks"]), int(kv["ops"])))
    g = avg(name, lambda kv: us(int(kv["gateway_ticks"]), int(kv["ops"])))
    print(f"{'direct' if name == 'unary' else 'gateway':<9} {t:>8.0f} {p50:>7.2f} {p99:>7.2f} {err:>6} {c:>16.0f} {g:>15.0f} {c + g:>13.0f}")
d, g = rows["unary"], rows["gateway"]
cd = avg("unary", lambda kv: us(int(kv["clearing_ticks"]), int(kv["ops"])))
cg = avg("gateway", lambda kv: us(int(kv["clearing_ticks"]) + int(kv["gateway_ticks"]), int(kv["ops"])))
print(f"gateway path / direct: throughput {avg('gateway', lambda kv: float(kv['throughput'])) / avg('unary', lambda kv: float(kv['throughput'])):.0%}, "
      f"server CPU per settlement {cg / cd:.2f}× (the gateway adds {cg - cd:.0f} µs)")
PY
