#!/usr/bin/env bash
# Supervision's costs (issue 19, BENCHMARKS.md), each as a ratio inside one run:
#   1. flags and indicators at settle time: `clearing serve --supervision on` next to `--supervision off`,
#      the same workload (`clearing bench`, unary) sent alternately ROUNDS times to each; CPU per
#      settlement of each `clearing` process (and of Redis with STORE=redis) from /proc/<pid>/stat;
#   2. reading a month: `clearing bench-indicators` loads the aggregates 10 M settlements of 400 regions
#      leave (INSTITUTIONS institutions, PAIRS region pairs), then `GetIndicators` for the whole month
#      (national view) and the report command (`clearing supervision`, JSON + CSV + HTML) are timed.
# Usage: scripts/bench-supervision.sh [claims per run] [clients]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
claims=${1:-10000}
clients=${2:-32}
# 20,000 members: about one visit per member a month over the runs, as members visit; with 2,000 the
# recent-visit lists and the flags grow with an activity no member has (MEMBERS=2000 shows that case).
members=${MEMBERS:-20000}
rounds=${ROUNDS:-2}
store=${STORE:-embedded}
institutions=${INSTITUTIONS:-20000}
pairs=${PAIRS:-24000}
settlements=${SETTLEMENTS:-10000000}
# Visits spread over 60 days: with 2,000 members a day's claims would put nearly every member in several
# service regions a day (a flag each time); VISIT_DAYS=1 measures that worst case.
visit_days=${VISIT_DAYS:-60}
cargo build --release -q -p clearing --bins
bin=target/release/clearing
bench_dir
$bin bench-rules --regions 400 --out "$dir/rules" >/dev/null

addr_of() { listening_addr "$dir/$1.out"; }

redis_pid=""
if [ "$store" = redis ]; then
  port=$(start_redis "$dir")
  redis_pid=$(redis_pid "$port")
fi
store_args() { # name
  if [ "$store" = redis ]; then echo --store redis --redis-url "redis://127.0.0.1:$port"; else echo --data-dir "$dir/data-$1"; fi
}

echo "== machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); store: $store; $claims claims per run, $clients clients, $members members, 400 regions, visits over $visit_days days"
echo "== 1. flags and indicators at settle time (on vs off, alternated)"
for s in off on; do
  # shellcheck disable=SC2046
  RUST_LOG=warn $bin serve --plaintext --listen 127.0.0.1:0 --rules "$dir/rules" --supervision $s $(store_args $s) > "$dir/$s.out" 2> "$dir/$s.log" &
  echo $! > "$dir/$s.pid"
done
for s in off on; do
  addr=$(addr_of $s)
  echo "$addr" > "$dir/$s.addr"
  $bin bench --addr "$addr" --clients "$clients" --members "$members" --rules "$dir/rules" --run-id "w$s" --claims 200 --msg-tag "w$s" --name warmup >/dev/null 2>&1
done
for r in $(seq 1 "$rounds"); do
  for s in off on; do
    line=$(measured clearing="$(cat "$dir/$s.pid")" redis="$redis_pid" -- $bin bench --addr "$(cat "$dir/$s.addr")" --clients "$clients" \
      --members "$members" --rules "$dir/rules" --run-id "w$s" --claims "$claims" --skip-register --mode unary --msg-tag "$s$r" \
      --name "$s" --visit-days "$visit_days")
    echo "$line" >> "$dir/results.txt"
    echo "  round $r supervision $s: $(brief "$line")"
  done
done
for s in off on; do kill "$(cat "$dir/$s.pid")"; wait "$(cat "$dir/$s.pid")" 2>/dev/null || true; done

python3 - "$dir/results.txt" "$(getconf CLK_TCK)" <<'PY'
import sys
hz = int(sys.argv[2])
rows = {}
for line in open(sys.argv[1]):
    kv = dict(p.split("=", 1) for p in line.split()[1:])
    rows.setdefault(kv["name"], []).append(kv)
avg = lambda name, f: sum(f(kv) for kv in rows[name]) / len(rows[name])
us = lambda ticks, ops: ticks * 1e6 / hz / ops
print(f"{'supervision':<12} {'req/s':>8} {'p99 ms':>7} {'errors':>6} {'clearing µs/req':>16} {'redis µs/req':>13}")
for name in ["off", "on"]:
    print(f"{name:<12} {avg(name, lambda kv: float(kv['throughput'])):>8.0f} {avg(name, lambda kv: int(kv['p99_us'])) / 1000:>7.2f} "
          f"{sum(int(kv['errors']) for kv in rows[name]):>6} {avg(name, lambda kv: us(int(kv['clearing_ticks']), int(kv['ops']))):>16.0f} "
          f"{avg(name, lambda kv: us(int(kv['redis_ticks']), int(kv['ops']))):>13.0f}")
c = lambda n: avg(n, lambda kv: us(int(kv['clearing_ticks']), int(kv['ops'])))
rd = lambda n: avg(n, lambda kv: us(int(kv['redis_ticks']), int(kv['ops'])))
line = f"supervision on / off: clearing CPU per settlement {c('on') / c('off'):.3f}× (target ≤ 1.10)"
if rd('off') > 0:
    line += f", Redis CPU per settlement {rd('on') / rd('off'):.3f}×"
print(line)
PY

echo "== 2. reading a month: $settlements settlements' aggregates, $institutions institutions, $pairs region pairs, 400 regions"
month=209912
# shellcheck disable=SC2046
$bin bench-indicators --month "$month" --institutions "$institutions" --pairs "$pairs" --settlements "$settlements" $(store_args read)
# shellcheck disable=SC2046
RUST_LOG=warn $bin serve --plaintext --listen 127.0.0.1:0 --rules "$dir/rules" $(store_args read) > "$dir/read.out" 2> "$dir/read.log" & read_pid=$!
read_addr=$(addr_of read)
for i in 1 2 3; do
  $bin bench-indicators --month "$month" --time-read --addr "$read_addr"
done
start=$(date +%s.%N)
$bin supervision --month "$month" --out "$dir/report" --addr "$read_addr" > "$dir/report.txt"
end=$(date +%s.%N)
head -1 "$dir/report.txt"
python3 -c "import sys; print(f'  report command (read + JSON + CSV + HTML): {float(sys.argv[2]) - float(sys.argv[1]):.2f} s (target < 2 s for the read)')" "$start" "$end"
ls -la "$dir/report" | awk 'NR > 1 {print "   ", $5, $9}'
kill $read_pid; wait $read_pid 2>/dev/null || true
