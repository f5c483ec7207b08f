#!/usr/bin/env bash
# The soak of issue 14, outside CI's default run: claims, reversals and family-account payments from 24
# clients at two `clearing` replicas on Redis with AOF always (with --cluster: a 3-node Redis Cluster,
# where family pay crosses shards through the hold saga), while `clearing` and `redis-server` are
# killed with SIGKILL at random moments and today's window is closed half-way. Then it checks the books
# (every acknowledged settlement reads back identically; accumulators and balances equal the sums of
# their settlements; no cap, deductible or balance broken; no hold left; one settlement per msgid; the
# closed window's report equals the sum of the answers dated that day) and prints the figures.
#
#   scripts/soak.sh [--cluster] [--minutes N]      (default: one Redis, 10 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
cluster=0
minutes=10
while [ $# -gt 0 ]; do
  case "$1" in
    --cluster) cluster=1 ;;
    --minutes) minutes="$2"; shift ;;
    *) echo "usage: scripts/soak.sh [--cluster] [--minutes N]" >&2; exit 2 ;;
  esac
  shift
done
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || {
  echo "soak.sh: needs redis-server and redis-cli (Debian: apt-get install redis-server redis-tools; scripts/test.sh installs them)" >&2
  exit 1
}
cargo build --release --bins
SOAK_SECS=$((minutes * 60)) SOAK_CLUSTER=$cluster \
  cargo test --release -p tests --test soak -- --ignored --nocapture --test-threads 1
