#!/usr/bin/env bash
# One national day, replayed (issue 32): `clearing serve` on Redis (AOF, appendfsync always) with 400
# regions (5 seed + 395 synthetic, `clearing bench-rules`), 2,000,000 members registered, then 650,000
# claims (about one day of national cross-province outpatient volume) settled by `clearing bench`
# (unary, 32 clients, 2 % resends and 1 % reversals as in every bench run), then `clearing net` closes
# today's window and nets it. Prints the wall time of each phase, requests per second, CPU per
# request (settlements, resends and reversals) of each process (clearing, Redis, the load generator, from /proc and getrusage), the peak
# memory of each (VmHWM; Redis's used_memory_peak too) and Redis's memory per member and per request.
#
# Usage: scripts/replay-day.sh [--claims N] [--members N] [--clients N]
#   defaults 650000 claims, 2000000 members, 32 clients; smaller numbers give a quick rehearsal, e.g.
#   scripts/replay-day.sh --claims 20000 --members 50000
#   CLEARING_BIN=path replays with another build of `clearing`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
claims=650000 members=2000000 clients=32
while [ $# -gt 0 ]; do
  case $1 in
    --claims) claims=${2:?--claims needs a number}; shift 2 ;;
    --members) members=${2:?--members needs a number}; shift 2 ;;
    --clients) clients=${2:?--clients needs a number}; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "replay-day.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
cargo build --release -q -p clearing --bins
bin=${CLEARING_BIN:-target/release/clearing}
bench_dir
$bin bench-rules --regions 400 --out "$dir/rules" >/dev/null
hz=$(getconf CLK_TCK)
now() { date +%s.%N; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
redis_info() { redis-cli -p "$port" info memory | sed -n "s/^$1:\([0-9]*\).*/\1/p"; }
# rusage COMMAND…: runs it and appends "user_s sys_s maxrss_kib" of the command (its children) to $dir/rusage.
rusage() {
  python3 - "$dir/rusage" "$@" <<'PY'
import resource, subprocess, sys
rc = subprocess.run(sys.argv[2:]).returncode
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "a").write(f"{r.ru_utime} {r.ru_stime} {r.ru_maxrss}\n")
sys.exit(rc)
PY
}

echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); ${members} members, ${claims} claims, ${clients} clients, 400 regions"
port=$(start_redis "$dir")
rpid=$(redis_pid "$port")
RUST_LOG=warn $bin serve --plaintext --store redis --redis-url "redis://127.0.0.1:$port" --listen 127.0.0.1:0 --rules "$dir/rules" \
  > "$dir/serve.out" 2> "$dir/serve.log" & spid=$!
addr=$(listening_addr "$dir/serve.out")
mem0=$(redis_info used_memory)

echo "== registering ${members} members"
t0=$(now)
rusage $bin bench --addr "$addr" --clients "$clients" --claims 0 --members "$members" --rules "$dir/rules" --run-id d --name register \
  > "$dir/register.txt" 2>&1 || { cat "$dir/register.txt"; exit 1; }
t1=$(now)
mem1=$(redis_info used_memory)
echo "   $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f s", b - a}')"
sed -n 's/^ *\(calls sent again.*\)/   \1/p' "$dir/register.txt"

echo "== settling ${claims} claims"
s0=$(ticks "$spid") r0=$(ticks "$rpid")
rusage $bin bench --addr "$addr" --clients "$clients" --claims "$claims" --members "$members" --rules "$dir/rules" --run-id d \
  --skip-register --msg-tag day --name day > "$dir/day.txt" 2>&1 || { cat "$dir/day.txt"; exit 1; }
t2=$(now)
s1=$(ticks "$spid") r1=$(ticks "$rpid")
mem2=$(redis_info used_memory)
grep '^RESULT' "$dir/day.txt" > "$dir/result.txt" || { cat "$dir/day.txt"; exit 1; }
echo "   $(brief "$(cat "$dir/result.txt")")"
sed -n 's/^ *\(calls sent again.*\)/   \1/p' "$dir/day.txt"

echo "== closing and netting today's window (clearing net)"
today=$(TZ=UTC-8 date +%F)   # the clearing day: Asia/Shanghai, a fixed UTC+8 (no tzdata needed)
$bin net --addr "$addr" --date "$today" --out "$dir/reports" > "$dir/net.txt" || { cat "$dir/net.txt"; exit 1; }
t3=$(now)
sed -n '1p;$p' "$dir/net.txt" | sed 's/^/   /'
aof_bytes=$(du -scb "$dir"/appendonly* 2>/dev/null | tail -1 | cut -f1 || true)   # appendonlydir/ on Redis 7, appendonly.aof before

echo
echo "== one day replayed"
python3 - "$dir" "$hz" "$members" "$t0" "$t1" "$t2" "$t3" "$s0" "$s1" "$r0" "$r1" "$mem0" "$mem1" "$mem2" \
  "$(hwm_kib "$spid")" "$(hwm_kib "$rpid")" "$(redis_info used_memory_peak)" "$(redis_info used_memory)" "${aof_bytes:-0}" <<'PY'
import sys
d, hz, members = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t0, t1, t2, t3 = map(float, sys.argv[4:8])
s0, s1, r0, r1, mem0, mem1, mem2, serve_hwm, redis_hwm, peak, used, aof = map(int, sys.argv[8:20])
kv = dict(p.split("=", 1) for p in open(f"{d}/result.txt").read().split()[1:])
ops = int(kv["ops"])
reg, day = (list(map(float, l.split())) for l in open(f"{d}/rusage").read().split("\n")[:2])
cpu_us = lambda ticks: ticks * 1e6 / hz / ops
print(f"wall time: {t3 - t0:.0f} s (register {t1 - t0:.0f} s, settle {t2 - t1:.0f} s, close and net {t3 - t2:.1f} s)")
print(f"settlements: {ops} requests at {float(kv['throughput']):.0f}/s, p50 {int(kv['p50_us']) / 1000:.1f} ms, p99 {int(kv['p99_us']) / 1000:.1f} ms, errors {kv['errors']}")
print(f"CPU per request: clearing {cpu_us(s1 - s0):.0f} µs, Redis {cpu_us(r1 - r0):.0f} µs, load generator {(day[0] + day[1]) * 1e6 / ops:.0f} µs")
print(f"peak memory (VmHWM): clearing {serve_hwm / 1024:.0f} MiB, Redis {redis_hwm / 1024:.0f} MiB (used_memory_peak {peak / 2**20:.0f} MiB), load generator {max(reg[2], day[2]) / 1024:.0f} MiB")
print(f"Redis memory: {(mem1 - mem0) / members:.0f} B per member, {(mem2 - mem1) / ops:.0f} B per request (used_memory {used / 2**20:.0f} MiB at the end; AOF on disk {aof / 2**20:.0f} MiB)")
PY
