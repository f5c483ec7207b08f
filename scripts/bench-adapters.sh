#!/usr/bin/env bash
# The cost of remote region adapters, in one run on one machine:
#   1. `clearing serve` (embedded store) with every region in process, and `clearing bench` against it;
#   2. two `region-adapter serve` processes, and `clearing serve` routing every seed region to them
#      (Hubei and Jiangxi to one, Inner Mongolia, Jiangsu and Shanxi to the other): each claim makes two
#      remote hops, pricing and policy; then the same `clearing bench`.
# Usage: scripts/bench-adapters.sh [clients] [claims]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
clients=${1:-32}
claims=${2:-20000}
cargo build --release -q -p clearing -p region-adapter-server --bins
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$dir"' EXIT

addr_of() { listening_addr "$dir/$1.out"; } # name → the address the process printed

target/release/clearing serve --plaintext --listen 127.0.0.1:0 --data-dir "$dir/local" > "$dir/local.out" 2> "$dir/local.log" &
local_pid=$!
echo "== all regions in process =="
target/release/clearing bench --addr "$(addr_of local)" --clients "$clients" --claims "$claims" --run-id L
kill "$local_pid"; wait "$local_pid" 2>/dev/null || true

target/release/region-adapter serve --plaintext --listen 127.0.0.1:0 > "$dir/a.out" 2> "$dir/a.log" &
target/release/region-adapter serve --plaintext --listen 127.0.0.1:0 > "$dir/b.out" 2> "$dir/b.log" &
a=$(addr_of a)
b=$(addr_of b)
target/release/clearing serve --plaintext --listen 127.0.0.1:0 --data-dir "$dir/routed" \
  --route "420000=http://$a" --route "360000=http://$a" --route "150000=http://$b" --route "320000=http://$b" --route "140000=http://$b" \
  > "$dir/routed.out" 2> "$dir/routed.log" &
routed=$(addr_of routed)
echo "== every region on a remote adapter (two hops per claim) =="
target/release/clearing bench --addr "$routed" --clients "$clients" --claims "$claims" --run-id R
