#!/usr/bin/env bash
# Server store benchmarks, one run per store on throwaway durable servers (PostgreSQL with
# fsync=on, Redis with AOF everysec, MariaDB with innodb_flush_log_at_trx_commit=1):
# the server's own ceiling (pgbench / redis-benchmark / mariadb-slap), a preload of
# completed tasks, bulk enqueue, end to end with 2 worker processes at claim batch 100
# and 1000, round trips per task, and submit-to-start latency. Prints a table per store.
# Usage: bench/stores.sh [--store postgres,redis,mysql] [--tasks 200000]
#                        [--completed 1000000] [--batches 100,1000] [--samples 300]
#                        [--ceiling-secs 5] [--workers 2]
#                        [--worker-query pool_size=3]
# Quick run: bench/stores.sh --completed 0 --tasks 50000 --ceiling-secs 2
#
# What finished tasks kept cost, on SQLite, PostgreSQL, Redis and MariaDB: queue_stats,
# the progress of a job of --job-blocks blocks, claim+complete tasks/s and submit-to-start
# p50 with each number of other completed tasks kept, and the ratio to 0 kept:
#   bench/stores.sh --retained 0,1000000,10000000 [--store sqlite,postgres,redis,mysql]
#                   [--job-blocks 1000000] [--tasks 50000] [--samples 200]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p wrangle-bench --bin stores
exec "${CARGO_TARGET_DIR:-target}/release/stores" "$@"
