#!/usr/bin/env bash
# A real demo job on the embedded SQLite store (no server): a worker with 4 runners
# computes a SHA-1 ticket code per ticket number, one task per ticket, then we wait for one result, look at the queue, and stop the worker gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p wrangle-cli
wrangle="$PWD/target/release/wrangle"
demo=$(mktemp -d)
trap 'kill $worker 2>/dev/null || true; rm -rf "$demo"' EXIT
cd "$demo"

echo "== a worker on sqlite://.wrangle/wrangle.db, 4 runners; the payload reaches the command as argv ({}), never spliced into shell text"
"$wrangle" worker -n 4 --exec 'sh -c "printf ticket-%s \"\$1\" | sha1sum | cut -c1-40" sh {}' \
  2> worker.log &
worker=$!

echo "== submit 10 tickets in one batch (all or nothing)"
seq 0 9 | "$wrangle" submit ticket --batch - | tr '\n' ' '; echo

echo "== submit one more and wait for its result"
"$wrangle" submit ticket 10 --wait

sleep 1
echo "== status"
"$wrangle" status
echo "== tasks"
"$wrangle" tasks list

echo "== stop the worker (SIGTERM: finish running tasks, hand back the rest)"
kill -TERM $worker; wait $worker || true
tail -n 2 worker.log
