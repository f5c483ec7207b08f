# Shared by the bench scripts (sourced, not run): CPU of a process from /proc, a free loopback port, a
# redis-server of the script's own, a server's listening address, and one measured `clearing bench` run.

# CPU ticks (user + system) a process has used so far; 0 for no process.
ticks() { if [ -n "${1:-}" ]; then awk '{print $14 + $15}' "/proc/$1/stat"; else echo 0; fi; }

# bench_dir: a temporary directory in $dir, removed when the script exits, together with the script's jobs
# and the Redis on $port, if it started one.
bench_dir() {
  dir=$(mktemp -d)
  trap 'redis-cli -p "${port:-0}" shutdown nosave >/dev/null 2>&1 || true; kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$dir"' EXIT
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_redis DIR: a redis-server keeping every acknowledged write (AOF, appendfsync always) in DIR, on a
# free loopback port; waits until it answers and prints the port.
start_redis() {
  local port
  port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --dir "$1" --appendonly yes --appendfsync always --aof-load-truncated no --save '' --daemonize yes --logfile "$1/redis.log"
  until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
  echo "$port"
}

redis_pid() { redis-cli -p "$1" info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p'; }

# listening_addr FILE: waits for a server's "… listening on ADDR" line in FILE and prints ADDR.
listening_addr() { until grep -q listening "$1" 2>/dev/null; do sleep 0.1; done; sed -n 's/.* listening on //p' "$1"; }

# measured NAME=PID … -- COMMAND…: runs a `clearing bench` command and prints its RESULT line followed by
# `NAME_ticks=…`, the CPU ticks each named process used during the run (an empty PID counts 0), and
# `client_ms=…`, the CPU the load generator itself used (user + system, from the shell's `times`).
measured() {
  local names=() pids=() before=() line out i
  while [ "$1" != -- ]; do names+=("${1%%=*}"); pids+=("${1#*=}"); shift; done
  shift
  for i in "${!pids[@]}"; do before[i]=$(ticks "${pids[i]}"); done
  # `times` in the same subshell: the second line is the CPU of its children (the bench and grep).
  out=$("$@" 2>/dev/null | grep '^RESULT'; times)
  line=$(echo "$out" | head -1)
  line+=" client_ms=$(echo "$out" | tail -1 | awk '{split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%d", ((u[1] + s[1]) * 60 + u[2] + s[2]) * 1000}')"
  for i in "${!pids[@]}"; do line+=" ${names[i]}_ticks=$(($(ticks "${pids[i]}") - before[i]))"; done
  echo "$line"
}

# brief RESULT-LINE: "N req/s, p99 N µs, errors N".
brief() { echo "$1" | sed 's/.*throughput=\([0-9]*\).*p99_us=\([0-9]*\).*errors=\([0-9]*\).*/\1 req\/s, p99 \2 µs, errors \3/'; }
