#!/usr/bin/env bash
# What the background fold costs per settlement on Redis (issue 20): settles CLAIMS claims on a
# `clearing serve` that does not fold (`--fold-interval-secs 3600`), stops it, then starts one that folds
# every second and waits until every shard's window log and supervision log is folded. Prints the CPU
# Redis and the folding process spent on it per settlement (/proc/<pid>/stat), and the commands Redis
# ran for it (INFO commandstats: the scripts' own HINCRBY/HGET/HSET are counted there too).
# Usage: scripts/bench-fold.sh [claims] [clients]   (MEMBERS=5000; CLEARING_BIN=path for another build)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
claims=${1:-20000}
clients=${2:-32}
members=${MEMBERS:-5000}
cargo build --release -q -p clearing --bins
bin=${CLEARING_BIN:-target/release/clearing}
bench_dir
$bin bench-rules --regions 400 --out "$dir/rules" >/dev/null
port=$(start_redis "$dir")
rp=$(redis_pid "$port")
serve() { # out-file fold-interval
  RUST_LOG=warn $bin serve --plaintext --store redis --redis-url "redis://127.0.0.1:$port" --listen 127.0.0.1:0 --rules "$dir/rules" \
    --fold-interval-secs "$2" > "$dir/$1" 2> "$dir/$1.log" &
}
serve settle.out 3600; sp=$!
addr=$(listening_addr "$dir/settle.out")
$bin bench --addr "$addr" --clients "$clients" --claims 200 --members "$members" --rules "$dir/rules" --run-id f --msg-tag warm --name warmup >/dev/null 2>&1
line=$($bin bench --addr "$addr" --clients "$clients" --claims "$claims" --members "$members" --rules "$dir/rules" --run-id f --msg-tag unary --name settle --skip-register 2>/dev/null | grep '^RESULT')
echo "settled: $(brief "$line") (not folding)"
ops=$(echo "$line" | sed 's/.* ops=\([0-9]*\).*/\1/')
kill $sp; wait $sp 2>/dev/null || true
# The logs waiting (listed once, before the measurement) and their in-flight names (wl → wlf, svl → svlf).
redis-cli -p "$port" --scan --pattern '*:wl:*' > "$dir/logs"
redis-cli -p "$port" --scan --pattern '*:svl:*' >> "$dir/logs"
sed 's/:wl:/:wlf:/; s/:svl:/:svlf:/' "$dir/logs" > "$dir/inflight"
cat "$dir/inflight" >> "$dir/logs"
echo "waiting: $(($(wc -l < "$dir/logs") / 2)) shard logs"
left() { xargs redis-cli -p "$port" exists < "$dir/logs"; }
redis-cli -p "$port" config resetstat > /dev/null
t0=$(ticks "$rp")
serve fold.out 1; fp=$!
listening_addr "$dir/fold.out" > /dev/null
f0=$(ticks "$fp")
until [ "$(left)" = 0 ]; do sleep 0.2; done
t1=$(ticks "$rp"); f1=$(ticks "$fp")
kill $fp; wait $fp 2>/dev/null || true
python3 -c "import sys; r, f, hz, n = map(int, sys.argv[1:]); print(f'FOLD settlements={n} redis_us_per_settlement={r * 1e6 / hz / n:.1f} folder_us_per_settlement={f * 1e6 / hz / n:.1f}')" \
  "$((t1 - t0))" "$((f1 - f0))" "$(getconf CLK_TCK)" "$ops"
redis-cli -p "$port" info commandstats | grep -E 'evalsha|hincrby|hset|hget|lrange|exists' | sed 's/^cmdstat_/  /; s/,rejected.*//'
