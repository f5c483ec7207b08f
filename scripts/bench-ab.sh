#!/usr/bin/env bash
# One lever alone, A/B alternated in one run (issue 20): two `clearing serve` processes, each on a store
# of its own (STORE=redis: a redis-server each, AOF appendfsync always; STORE=embedded: a data dir each),
# the same workload (`clearing bench`, unary) sent to A, then B, ROUNDS times. CPU per settlement of
# each server and of its Redis from /proc/<pid>/stat around each run; the members are registered by a
# warm-up run first. A and B are two builds (A_BIN, B_BIN) and/or two sets of flags (A_ARGS, B_ARGS).
# Usage: A_BIN=… B_BIN=… A_ARGS=… B_ARGS=… STORE=redis scripts/bench-ab.sh [claims per run] [clients]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
claims=${1:-10000}
clients=${2:-32}
members=${MEMBERS:-5000}
rounds=${ROUNDS:-3}
store=${STORE:-redis}
a_bin=${A_BIN:-target/release/clearing}
b_bin=${B_BIN:-target/release/clearing}
client=$b_bin
dir=$(mktemp -d)
trap 'for p in $(cat "$dir"/*.port 2>/dev/null); do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done; kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$dir"' EXIT
$client bench-rules --regions 400 --out "$dir/rules" >/dev/null

echo "== machine: $(nproc) cores; store: $store; $claims claims per run, $clients clients, $members members, 400 regions, $rounds rounds"
echo "== A: $a_bin ${A_ARGS:-}"
echo "== B: $b_bin ${B_ARGS:-}"
for side in A B; do
  bin_var=${side,,}_bin; args_var=${side}_ARGS
  store_args=(--data-dir "$dir/data-$side")
  echo "" > "$dir/$side.rpid"
  if [ "$store" = redis ]; then
    mkdir -p "$dir/redis-$side"
    port=$(start_redis "$dir/redis-$side")
    echo "$port" > "$dir/$side.port"
    redis_pid "$port" > "$dir/$side.rpid"
    store_args=(--store redis --redis-url "redis://127.0.0.1:$port")
  fi
  # shellcheck disable=SC2086
  RUST_LOG=warn ${!bin_var} serve --plaintext --listen 127.0.0.1:0 --rules "$dir/rules" "${store_args[@]}" ${!args_var:-} > "$dir/$side.out" 2> "$dir/$side.log" &
  echo $! > "$dir/$side.pid"
done
for side in A B; do
  listening_addr "$dir/$side.out" > "$dir/$side.addr"
  $client bench --addr "$(cat "$dir/$side.addr")" --clients "$clients" --claims 200 --members "$members" --rules "$dir/rules" --run-id w --msg-tag warm --name warmup >/dev/null 2>&1
done
for r in $(seq 1 "$rounds"); do
  for side in A B; do
    line=$(measured server="$(cat "$dir/$side.pid")" redis="$(cat "$dir/$side.rpid")" -- $client bench --addr "$(cat "$dir/$side.addr")" \
      --clients "$clients" --members "$members" --rules "$dir/rules" --run-id w --claims "$claims" --skip-register --mode unary \
      --msg-tag "r$r" --name "$side")
    echo "$line" >> "$dir/results.txt"
    echo "  round $r $side: $(brief "$line")"
  done
done
python3 - "$dir/results.txt" "$(getconf CLK_TCK)" <<'PY'
import sys
hz = int(sys.argv[2])
rows = {}
for line in open(sys.argv[1]):
    kv = dict(p.split("=", 1) for p in line.split()[1:])
    rows.setdefault(kv["name"], []).append(kv)
avg = lambda n, f: sum(f(kv) for kv in rows[n]) / len(rows[n])
us = lambda k: (lambda kv: int(kv[k]) * 1e6 / hz / int(kv["ops"]))
print(f"{'side':<5} {'req/s':>8} {'p99 ms':>7} {'errors':>6} {'server µs/req':>14} {'redis µs/req':>13}")
for n in ("A", "B"):
    print(f"{n:<5} {avg(n, lambda kv: float(kv['throughput'])):>8.0f} {avg(n, lambda kv: int(kv['p99_us'])) / 1000:>7.2f} "
          f"{sum(int(kv['errors']) for kv in rows[n]):>6} {avg(n, us('server_ticks')):>14.0f} {avg(n, us('redis_ticks')):>13.0f}")
line = f"B / A: throughput {avg('B', lambda kv: float(kv['throughput'])) / avg('A', lambda kv: float(kv['throughput'])):.3f}×, server CPU per settlement {avg('B', us('server_ticks')) / avg('A', us('server_ticks')):.3f}×"
if avg("A", us("redis_ticks")) > 0:
    line += f", Redis CPU per settlement {avg('B', us('redis_ticks')) / avg('A', us('redis_ticks')):.3f}×"
print(line)
PY
