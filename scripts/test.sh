#!/usr/bin/env bash
# Runs every test of the workspace on a fresh Debian machine with only cargo: installs what the tests
# need when it is missing, builds the binaries the end-to-end tests start, then runs the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# rustfmt is part of the check; install the component when this toolchain lacks it.
if ! cargo fmt --version >/dev/null 2>&1; then
  rustup component add rustfmt
fi

# The end-to-end tests (tests/) start the real binaries; build them first so they are current.
cargo build --workspace --bins
cargo test --workspace "$@"
