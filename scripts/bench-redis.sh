#!/usr/bin/env bash
# Measures `clearing bench` against Redis next to the Redis script ceiling, in one run:
#   1. a redis-server of its own (AOF, appendfsync always) on a free loopback port in a temp dir;
#   2. `clearing serve --plaintext --store redis` (release build) and `clearing bench` against it;
#   3. `scripts/commit-ceiling.sh`: redis-benchmark running the same commit script (commit.lua, by SHA)
#      with equivalent keys and arguments, which is what one settlement costs Redis: the ceiling of the
#      commit path.
# Usage: scripts/bench-redis.sh [clients] [claims]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
clients=${1:-64}
claims=${2:-40000}
cargo build --release -q -p clearing -p region-adapter-server
dir=$(mktemp -d)
trap 'redis-cli -p "${port:-0}" shutdown nosave >/dev/null 2>&1 || true; kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
port=$(start_redis "$dir")
target/release/clearing serve --plaintext --store redis --redis-url "redis://127.0.0.1:$port" --listen 127.0.0.1:0 > "$dir/serve.out" 2> "$dir/serve.log" &
addr=$(listening_addr "$dir/serve.out")
echo "== clearing bench (store: redis, AOF always) =="
target/release/clearing bench --addr "$addr" --clients "$clients" --claims "$claims" --members 5000 --connections 8 | tee "$dir/bench.txt"

echo "== the Redis ceiling: commit.lua by EVALSHA, the same keys and arguments a settlement sends (scripts/commit-ceiling.sh) =="
scripts/commit-ceiling.sh "$port" | tee "$dir/ceiling.txt"
ours=$(sed -n 's/.*throughput: \([0-9]*\) requests.*/\1/p' "$dir/bench.txt")
ceiling=$(sed -n 's/.*scripts_per_s=\([0-9.]*\).*/\1/p' "$dir/ceiling.txt")
python3 -c "print(f'== clearing {float($ours):.0f}/s is {100*float($ours)/float($ceiling):.0f}% of the Redis commit-script ceiling {float($ceiling):.0f}/s ==')"
