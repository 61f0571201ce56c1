#!/usr/bin/env bash
# What finished tasks kept in the embedded SQLite store cost: `wrangle status` (queue
# statistics) and end-to-end throughput with 0 and with N finished tasks retained, next to
# the full count the statistics replaced, measured in the same run.
# Usage: bench/retained.sh [RETAINED...]   (default: 0 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p wrangle-cli
target="${CARGO_TARGET_DIR:-target}"
exec python3 bench/retained.py "$target/release/wrangle" "${@:-0 1000000}"
