#!/usr/bin/env bash
# The fault suite at length, and the reliability table it produces (docs/reliability.md).
# Real worker processes on every store (SQLite, and PostgreSQL, Redis and MariaDB started
# from the installed binaries in temp dirs on free ports), while faults are injected:
#   - kill -9 storms: a random worker killed every 2 s and replaced, for SECONDS;
#   - store crashes: the server killed with SIGKILL (PostgreSQL, MariaDB) or stopped
#     (Redis) under two running workers, and restarted.
# Every task's side effects are counted outside wrangle and compared with the store.
# CI runs the same tests in a short form (8 s storms) as part of scripts/test.sh.
#   scripts/chaos.sh [SECONDS]        default 120
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-120}"
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
export WRANGLE_TEST_REQUIRE_SERVERS=1 WRANGLE_CHAOS_SECONDS="$seconds" WRANGLE_CHAOS_REPORT="$rows"
# One test at a time: the faults are timed, and the machine may have two cores.
cargo test --locked -p wrangle-cli --test stores -- --test-threads 1 kill_9_storm restarted_under_two_workers

{
  echo "# Reliability"
  echo
  echo "What \`scripts/chaos.sh $seconds\` measured on $(date -u +%Y-%m-%d) ($(nproc) cores)."
  echo "Each row is one run: real worker processes on one store while the fault is injected."
  echo "A task is **lost** if it never completed, **completed more than once** if the store"
  echo "recorded two completions or its completed attempt's side effect happened twice, and"
  echo "**run again after completing** counts side effects of attempts after the completed one."
  echo "**Recovery** is from the last fault until every task was completed."
  echo
  echo "| fault | store | tasks | lost | completed more than once | run again after completing | recovery |"
  echo "|---|---|---|---|---|---|---|"
  cat "$rows"
  echo
  echo "Also tested on every change (their own assertions, not rows here): a full disk under"
  echo "an SQLite worker (crates/wrangle/tests/disk_full.rs), a worker started while its store"
  echo "is down (crates/wrangle-cli/tests/stores.rs), a runner that breaks the protocol"
  echo "(crates/wrangle/tests/hostile_runner.rs) and random input to every parser"
  echo "(scripts/fuzz.sh at length)."
} > docs/reliability.md
echo "wrote docs/reliability.md:"
cat docs/reliability.md
