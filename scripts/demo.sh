#!/usr/bin/env bash
# A real demo job on the embedded SQLite store (no server): divvy's dance party. First in
# the foreground with `wrangle run` (journaled in SQLite), then as a queue: a worker with 4
# runners computes a SHA-1 ticket code per ticket number, one task per ticket; we wait for
# one result, look at the queue, and stop the worker gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== building wrangle (cargo build --release -p wrangle-cli; a few minutes the first time, seconds after)"
cargo build --release -p wrangle-cli
wrangle="${CARGO_TARGET_DIR:-$PWD/target}/release/wrangle"
demo=$(mktemp -d)
trap 'kill $worker 2>/dev/null || true; rm -rf "$demo"' EXIT
examples="$PWD/examples"
cd "$demo"

echo "== wrangle run: 10 ticket codes, 5 at a time, in input order, journaled in run.db"
"$wrangle" run -n 5 --range 0..10 --keep-order --journal run.db -- "$examples/dance-party/ticket-code.sh" {}
echo "== the same run again: the journal says every ticket is done"
"$wrangle" run -n 5 --range 0..10 --keep-order --journal run.db -- "$examples/dance-party/ticket-code.sh" {}
echo "== the same codes from a Python runner loaded once per runner slot"
seq 0 4 | "$wrangle" run -n 2 --keep-order --runner "python3 $examples/runners/runner.py"
echo

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

echo
echo "== a range job over ids 0..100000 in blocks of 10000: one record; workers make the blocks as they claim them"
"$wrangle" job create demo-scan --range 0..100000 --block 10000 --kind scan
"$wrangle" worker -n 2 --name scanner --output blocks \
  --exec 'sh -c "echo scanned ids $WRANGLE_START..$WRANGLE_END; sleep 0.3"' 2> scanner.log &
worker=$!
"$wrangle" job status demo-scan --follow
echo "== per-block output and the block log (DScript's output directory)"
ls blocks/demo-scan | head -4
tail -n 3 blocks/demo-scan/blocks.log
kill -TERM $worker; wait $worker || true
