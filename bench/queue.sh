#!/usr/bin/env bash
# Queue throughput on the embedded SQLite store: baseline (1 task per transaction),
# enqueue, and end-to-end claim+run+complete with 1 and 2 worker processes.
# Usage: bench/queue.sh [--tasks N] [--batch N]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p wrangle-bench
exec target/release/wrangle-bench "$@"
