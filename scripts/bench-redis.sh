#!/usr/bin/env bash
# Measures `clearing bench` against Redis next to the Redis script ceiling, in one run:
#   1. a redis-server of its own (AOF, appendfsync always) on a free loopback port in a temp dir;
#   2. `clearing serve --plaintext --store redis` (release build) and `clearing bench` against it;
#   3. `redis-benchmark` running the same commit script (commit.lua, by SHA) with equivalent keys and
#      arguments, which is what one settlement costs Redis: the ceiling of the commit path.
# Usage: scripts/bench-redis.sh [clients] [claims]
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-64}
claims=${2:-40000}
cargo build --release -q -p clearing -p region-adapter-server
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes --appendfsync always --save '' --daemonize yes --logfile "$dir/redis.log"
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
target/release/clearing serve --plaintext --store redis --redis-url "redis://127.0.0.1:$port" --listen 127.0.0.1:0 > "$dir/serve.out" 2> "$dir/serve.log" &
until grep -q listening "$dir/serve.out" 2>/dev/null; do sleep 0.1; done
addr=$(sed -n 's/clearing listening on //p' "$dir/serve.out")
echo "== clearing bench (store: redis, AOF always) =="
target/release/clearing bench --addr "$addr" --clients "$clients" --claims "$claims" --members 5000 --connections 8 | tee "$dir/bench.txt"

echo "== redis-benchmark: commit.lua by EVALSHA, the same keys and arguments a settlement sends =="
sha=$(redis-cli -p "$port" script load "$(cat clearing/service/src/store/commit.lua)")
redis-cli -p "$port" hset '{ch:07}:m:421300:BENCH' f '{}' v 1 b 100000000 >/dev/null
rec=$(printf '{"setl_id":"x","msgid":"x","clr_date":"2026-01-01","insuplc_admdvs":"421300","mdtrt_admdvs":"360100","message":"%0900d","content_hash":"%064d","totals":{"count":1,"medfee_fen":1,"fund_fen":1,"acct_fen":1},"orig_setl_id":null,"reversed_by":null}' 0 0)
redis-benchmark -p "$port" -c 50 -n 200000 -r 100000000000 -q \
  EVALSHA "$sha" 9 '{ch:07}:i:__rand_int__' '{ch:07}:s:__rand_int__' '{ch:07}:closed' '{ch:07}:w:2026-01-01' '{ch:07}:j:2026-01-01' '{ch:07}:s:__rand_int__' '{ch:07}:m:421300:BENCH' '{ch:07}:sv:202601' '{ch:07}:fl:202601' \
  "$(printf '%064d' 0)" __rand_int__ "$rec" 2026-01-01 '' '421300|360100' 1 112760 22310 30000 0 1 "__rand_int__|421300|360100|1|112760|22310|30000" '' a:2024:general 50000 22310 1 -30000 '2026-01-05:360100,2026-01-09:360100' \
  10 'i|360100|H36010000001|n' 1 'i|360100|H36010000001|m' 112760 'i|360100|H36010000001|s' 4000 'i|360100|H36010000001|a' 30000 'i|360100|H36010000001|f' 22310 \
  'p|421300|360100|n' 1 'p|421300|360100|m' 112760 'p|421300|360100|s' 4000 'p|421300|360100|a' 30000 'p|421300|360100|f' 22310 '' '' 2>&1 \
  | tr '\r' '\n' | grep -o '[0-9.]* requests per second, p50=[0-9.]* msec' | tail -1 | sed 's/^/EVALSHA commit.lua: /' | tee "$dir/ceiling.txt"
ours=$(sed -n 's/.*throughput: \([0-9]*\) requests.*/\1/p' "$dir/bench.txt")
ceiling=$(sed -n 's/^EVALSHA commit.lua: \([0-9.]*\) requests.*/\1/p' "$dir/ceiling.txt" | head -1)
python3 -c "print(f'== clearing {float($ours):.0f}/s is {100*float($ours)/float($ceiling):.0f}% of the Redis commit-script ceiling {float($ceiling):.0f}/s ==')"
