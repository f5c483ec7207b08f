#!/usr/bin/env bash
# How much of the gap between a settlement's Redis CPU and the bare commit script's (issue 20, target 2)
# comes from the conditions the ceiling runs in rather than from what a settlement does: the same
# `scripts/commit-ceiling.sh` on one Redis (AOF, appendfsync always), with 1, 8 and 50 connections (how
# many commands Redis takes per event-loop turn, so per AOF write and fsync), with 50 connections each
# sending 16 scripts per round trip (reads, replies, AOF writes and fsyncs shared by many scripts), and
# with 50 connections while a gRPC load (`clearing bench` against `clearing bench-echo`) keeps both cores
# busy, as the service and the load generator do during a measured settlement run. Alternated ROUNDS times.
# Usage: scripts/ceiling-conditions.sh [runs per measurement]   (ROUNDS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
runs=${1:-50000}
rounds=${ROUNDS:-2}
cargo build --release -q -p clearing --bins
bin=${CLEARING_BIN:-target/release/clearing}
bench_dir
$bin bench-rules --regions 400 --out "$dir/rules" >/dev/null
port=$(start_redis "$dir")
$bin bench-echo --listen 127.0.0.1:0 > "$dir/echo.out" 2>&1 & echo_pid=$!
echo_addr=$(listening_addr "$dir/echo.out")
ceiling() { scripts/commit-ceiling.sh "$port" 1900 "$runs" | sed 's/.*redis_us_per_script=\([0-9.]*\).*/\1/'; }
echo "== machine: $(nproc) cores; Redis CPU per commit-script run, µs (${runs} runs each, ${rounds} rounds)"
printf '%-6s %8s %8s %8s %12s %16s\n' round c=1 c=8 c=50 'c=50 ×16' 'c=50 + load'
for r in $(seq 1 "$rounds"); do
  c1=$(CEILING_CLIENTS=1 ceiling)
  c8=$(CEILING_CLIENTS=8 ceiling)
  c50=$(CEILING_CLIENTS=50 ceiling)
  p16=$(CEILING_CLIENTS=50 CEILING_PIPELINE=16 ceiling)
  $bin bench --addr "$echo_addr" --clients 32 --claims 10000000 --members 5000 --rules "$dir/rules" --run-id "l$r" --msg-tag load \
    --name load > /dev/null 2>&1 & load=$!
  # The load is on once the echo server has spent half a second of CPU answering it.
  before=$(ticks "$echo_pid")
  until [ "$(($(ticks "$echo_pid") - before))" -gt 50 ]; do sleep 0.1; done
  loaded=$(CEILING_CLIENTS=50 ceiling)
  kill "$load"; wait "$load" 2>/dev/null || true
  printf '%-6s %8s %8s %8s %12s %16s\n' "$r" "$c1" "$c8" "$c50" "$p16" "$loaded"
done
