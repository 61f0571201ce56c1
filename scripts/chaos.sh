#!/usr/bin/env bash
# The fault suite at length, and the reliability table it produces (docs/reliability.md).
# Real worker processes on every store (SQLite, and PostgreSQL, Redis and MariaDB started
# from the installed binaries in temp dirs on free ports), while faults are injected
# (crates/wrangle-cli/tests/faults.rs):
#   - kill -9 storms: a random worker killed every 2 s and replaced, for SECONDS;
#   - store crashes: the server killed with SIGKILL (PostgreSQL, MariaDB) or stopped
#     (Redis) under two running workers, and restarted;
#   - network faults through a TCP proxy of the testkit: connections stalled past the
#     lease, reset, delayed; and a slow store (every round trip 20 ms slower);
#   - clock skew: two workers' clocks 0.9 s ahead and behind, with 3 s leases;
#   - a full disk under an SQLite worker (a tmpfs; crates/wrangle/tests/disk_full.rs);
#   - all of them mixed, store crashes included, for SECONDS;
#   - load: LOAD tasks through 8 workers.
# Every task's side effects are counted outside wrangle and compared with the store.
# CI runs the same tests in a short form (8 s storms, 10,000 tasks of load) as part of
# scripts/test.sh.
#   scripts/chaos.sh [SECONDS [LOAD]]        default 120 s, 1,000,000 tasks
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-120}"
load="${2:-1000000}"
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
export WRANGLE_TEST_REQUIRE_SERVERS=1 WRANGLE_CHAOS_SECONDS="$seconds" WRANGLE_CHAOS_REPORT="$rows"
export WRANGLE_LOAD_TASKS="$load"
# One test at a time: the faults are timed, and the machine may have two cores.
cargo test --locked -p wrangle-cli --test faults -- --test-threads 1
cargo test --locked -p wrangle --test disk_full

{
  echo "# Reliability"
  echo
  echo "What \`scripts/chaos.sh $seconds $load\` measured on $(date -u +%Y-%m-%d) ($(nproc) cores)."
  echo "Each row is one run: real worker processes on one store while the fault is injected."
  echo "A task is **lost** if it never completed, **completed more than once** if the store"
  echo "recorded two completions or its completed attempt's side effect happened twice, and"
  echo "**run again after completing** counts side effects of attempts after the completed one."
  echo "**Recovery** is from the last fault until every task was completed (for the load"
  echo "row, the whole run). Clock skew within a third of the lease must also take no task"
  echo "from a healthy worker: each of its tasks ran once, in its first attempt."
  echo
  echo "| fault | store | tasks | lost | completed more than once | run again after completing | recovery |"
  echo "|---|---|---|---|---|---|---|"
  cat "$rows"
  echo
  echo "Also tested on every change (their own assertions, not rows here): a worker started"
  echo "while its store is down (crates/wrangle-cli/tests/stores.rs), a runner that breaks the protocol"
  echo "(crates/wrangle/tests/hostile_runner.rs) and random input to every parser"
  echo "(scripts/fuzz.sh at length)."
} > docs/reliability.md
echo "wrote docs/reliability.md:"
cat docs/reliability.md
