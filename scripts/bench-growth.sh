#!/usr/bin/env bash
# How cost grows (issue 20, BENCHMARKS.md "How cost grows"), on Redis (AOF, appendfsync always):
#   1. CPU per settlement of the service and of Redis at 1, 8, 32 and 128 clients (5,000 members);
#   2. the same at 2,000 and 200,000 members (32 clients);
#   3. Redis memory per member (used_memory around registering them) and per settlement (around the
#      measured run, after a fold).
# Each configuration gets a fresh redis-server and `clearing serve`; members are registered by a warm-up
# run outside the measurement. CLEARING_BIN measures another build (e.g. the code before issue 20).
# Usage: scripts/bench-growth.sh [claims per run]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
claims=${1:-8000}
cargo build --release -q -p clearing --bins
bin=${CLEARING_BIN:-target/release/clearing}
dir=$(mktemp -d)
trap 'for p in $(cat "$dir"/*.port 2>/dev/null); do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done; kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$dir"' EXIT
target/release/clearing bench-rules --regions 400 --out "$dir/rules" >/dev/null
mem() { redis-cli -p "$1" info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p'; }

echo "== machine: $(nproc) cores; $bin; $claims claims per run, 400 regions, Redis AOF always"
measure() { # name clients members
  local name=$1 clients=$2 members=$3 port spid addr m0 m1 m2 line
  mkdir -p "$dir/$name"
  port=$(start_redis "$dir/$name")
  echo "$port" > "$dir/$name.port"
  RUST_LOG=warn $bin serve --plaintext --listen 127.0.0.1:0 --rules "$dir/rules" --store redis --redis-url "redis://127.0.0.1:$port" > "$dir/$name.out" 2> "$dir/$name.err" &
  spid=$!
  addr=$(listening_addr "$dir/$name.out")
  m0=$(mem "$port")
  # Registering only (no claims beyond a handful), then the warm-up claims.
  $bin bench --addr "$addr" --clients 32 --claims 1 --members "$members" --rules "$dir/rules" --run-id g --msg-tag reg >/dev/null 2>&1
  m1=$(mem "$port")
  $bin bench --addr "$addr" --clients "$clients" --claims 200 --members "$members" --rules "$dir/rules" --run-id g --msg-tag warm --skip-register >/dev/null 2>&1
  m2=$(mem "$port")
  line=$(measured server="$spid" redis="$(redis_pid "$port")" -- $bin bench --addr "$addr" --clients "$clients" --claims "$claims" \
    --members "$members" --rules "$dir/rules" --run-id g --skip-register --msg-tag m --name "$name")
  echo "$line clients=$clients members=$members mem_members=$((m1 - m0)) mem_run=$(($(mem "$port") - m2))" >> "$dir/results.txt"
  kill $spid; wait $spid 2>/dev/null || true
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  echo "  $name done"
}
for c in 1 8 32 128; do measure "clients$c" "$c" 5000; done
for m in 2000 200000; do measure "members$m" 32 "$m"; done

python3 - "$dir/results.txt" "$(getconf CLK_TCK)" <<'PY'
import sys
hz = int(sys.argv[2])
print(f"{'run':<15} {'clients':>7} {'members':>8} {'req/s':>7} {'p99 ms':>7} {'server µs/req':>14} {'redis µs/req':>13} {'B/member':>9} {'B/settlement':>13}")
for line in open(sys.argv[1]):
    kv = dict(p.split("=", 1) for p in line.split()[1:])
    ops = int(kv["ops"])
    us = lambda k: int(kv[k]) * 1e6 / hz / ops
    print(f"{kv['name']:<15} {kv['clients']:>7} {kv['members']:>8} {float(kv['throughput']):>7.0f} {int(kv['p99_us']) / 1000:>7.1f} "
          f"{us('server_ticks'):>14.0f} {us('redis_ticks'):>13.0f} {int(kv['mem_members']) / int(kv['members']):>9.0f} {int(kv['mem_run']) / ops:>13.0f}")
PY
