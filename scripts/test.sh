#!/usr/bin/env bash
# Runs every test of the workspace on a fresh Debian machine with only cargo: installs what the tests
# need when it is missing, builds the binaries the end-to-end tests start, then runs the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# rustfmt and clippy are part of the check; install the components when this toolchain lacks them.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi

# The Redis tests start their own redis-server processes (and a 3-node cluster) on free loopback ports.
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    echo "test.sh: installing redis-server and redis-tools with apt"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server redis-tools >/dev/null
  else
    echo "test.sh: redis-server and redis-cli are needed; install them (Debian: apt-get install redis-server redis-tools)" >&2
    exit 1
  fi
fi

# The gateway's tests run the README's HIS client (scripts/his_call.py, standard-library Python 3).
if ! command -v python3 >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    echo "test.sh: installing python3 with apt"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3 >/dev/null
  else
    echo "test.sh: python3 is needed; install it (Debian: apt-get install python3)" >&2
    exit 1
  fi
fi

# The supervision report's test renders the HTML page in headless Chromium (Debian's `chromium`).
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    echo "test.sh: installing chromium with apt"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  else
    echo "test.sh: chromium is needed for the report test; install it (Debian: apt-get install chromium)" >&2
    exit 1
  fi
fi

# The end-to-end tests (tests/) start the real binaries; build them first so they are current.
cargo build --workspace --bins
cargo test --workspace "$@"

# The Helm chart: lint, render (default and production-like values), validate against the Kubernetes
# schemas, and check that wrong values are refused.
./scripts/check-helm.sh
