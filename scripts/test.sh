#!/usr/bin/env bash
# Runs every test of the workspace on a fresh Debian machine with only cargo: installs what the tests
# need when it is missing, builds the binaries the end-to-end tests start, then runs the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# rustfmt and clippy are part of the check; install the components when this toolchain lacks them.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi

# Installs Debian packages with apt (what: the reason, for the message), or says what is needed and stops.
apt_install() {
  local what=$1; shift
  if command -v apt-get >/dev/null 2>&1; then
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    echo "test.sh: installing $* with apt ($what)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
  else
    echo "test.sh: $* needed ($what); install them (Debian: apt-get install $*)" >&2
    exit 1
  fi
}

# The Redis tests start their own redis-server processes (and a 3-node cluster) on free loopback ports.
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1 || ! command -v redis-check-aof >/dev/null 2>&1; then
  apt_install "the Redis tests" redis-server redis-tools
fi

# The revocation tests make one CRL with `openssl ca -gencrl`, as an operator's PKI does.
if ! command -v openssl >/dev/null 2>&1; then
  apt_install "the revocation tests' CRL" openssl
fi

# The gateway's tests run the README's HIS client (scripts/his_call.py, standard-library Python 3).
if ! command -v python3 >/dev/null 2>&1; then
  apt_install "the README's HIS client" python3
fi

# The sandbox's test runs the curl line the sandbox prints, as a HIS developer would.
if ! command -v curl >/dev/null 2>&1; then
  apt_install "the sandbox's curl line" curl
fi

# The supervision report's test renders the HTML page in headless Chromium (Debian's `chromium`).
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1; then
  apt_install "the report's browser test" chromium
fi

# No module cycle in any crate: pure rules sit below the code that calls them (ARCHITECTURE.md).
python3 scripts/check_modules.py

# The end-to-end tests (tests/) start the real binaries; build them first so they are current.
cargo build --workspace --bins
cargo test --workspace "$@"

# The Helm chart: lint, render (default and production-like values), validate against the Kubernetes
# schemas, and check that wrong values are refused.
./scripts/check-helm.sh
