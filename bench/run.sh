#!/usr/bin/env bash
# `wrangle run` against GNU parallel and xargs, in one run on this machine:
#  - N-way exec of `true` per item (fork+exec per item): GNU parallel -j N, xargs -P N,
#    wrangle run -n N;
#  - no-op items through a --runner (one long-lived Python process per runner);
#  - no-op items through a Rust `perform` (the divvy-style library API).
# Prints tasks/s, CPU seconds (user+sys of everything started) and the ratio to xargs.
#
#   bench/run.sh [--jobs N] [--exec-items 5000] [--runner-items 200000] [--rust-items 20000000]
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=2 exec_items=5000 runner_items=200000 rust_items=20000000
while [ $# -gt 0 ]; do
  case "$1" in
    --jobs) jobs=$2; shift 2 ;;
    --exec-items) exec_items=$2; shift 2 ;;
    --runner-items) runner_items=$2; shift 2 ;;
    --rust-items) rust_items=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v parallel >/dev/null || { echo "installing GNU parallel" >&2; apt-get install -y -qq parallel >/dev/null; }

cargo build --release -q -p wrangle-cli -p wrangle --example parallel_noop
target=${CARGO_TARGET_DIR:-target}
wrangle=$target/release/wrangle
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
seq 1 "$exec_items" > "$work/exec-items"
seq 1 "$runner_items" > "$work/runner-items"
cat > "$work/noop-runner.py" <<'PY'
import sys
write, flush = sys.stdout.write, sys.stdout.flush
for line in sys.stdin:
    # The id is the first key after "attempt"; answer without a JSON round trip.
    write('{"id":%s,"ok":true}\n' % line.split('"id":', 1)[1].split(",", 1)[0])
    flush()
PY

# measure NAME ITEMS COMMAND...: runs COMMAND with stdin from the item file; prints a row.
xargs_rate=""
measure() {
  local name=$1 items=$2 input=$3; shift 3
  /usr/bin/time -f "%e %U %S" -o "$work/time" "$@" < "$input" > /dev/null 2> "$work/stderr" \
    || { cat "$work/stderr" >&2; echo "$name failed" >&2; exit 1; }
  read -r elapsed user sys < "$work/time"
  local rate cpu
  rate=$(awk -v n="$items" -v t="$elapsed" 'BEGIN { printf "%.0f", n / (t > 0 ? t : 0.01) }')
  cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
  [ "$name" = "xargs -P $jobs" ] && xargs_rate=$rate
  local ratio="-"
  [ -n "$xargs_rate" ] && ratio=$(awk -v r="$rate" -v x="$xargs_rate" 'BEGIN { printf "%.2fx", r / x }')
  printf "%-34s %10s %12s/s %10ss %12s\n" "$name" "$items" "$rate" "$cpu" "$ratio"
}

printf "%-34s %10s %14s %11s %12s\n" "runner" "items" "rate" "cpu" "vs xargs"
measure "xargs -P $jobs" "$exec_items" "$work/exec-items" xargs -P "$jobs" -n 1 true
measure "GNU parallel -j $jobs" "$exec_items" "$work/exec-items" parallel -j "$jobs" true
measure "wrangle run -n $jobs (exec)" "$exec_items" "$work/exec-items" "$wrangle" run -n "$jobs" --no-progress -- true
measure "wrangle run -n $jobs --runner (python)" "$runner_items" "$work/runner-items" \
  "$wrangle" run -n "$jobs" --no-progress --runner "python3 $work/noop-runner.py"
rust_line=$("$target/release/examples/parallel_noop" "$rust_items" "$jobs")
rust_rate=$(echo "$rust_line" | awk '{ printf "%.0f", $(NF-1) }')
printf "%-34s %10s %12s/s %10s %12s\n" "wrangle::parallel perform (Rust)" "$rust_items" "$rust_rate" "-" \
  "$(awk -v r="$rust_rate" -v x="$xargs_rate" 'BEGIN { printf "%.0fx", r / x }')"
