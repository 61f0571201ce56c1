#!/usr/bin/env bash
# Random-input runs of every parser (durations, sizes, ranges, times, names, payloads,
# pool and autoscale specs, store URLs and their options, wrangle.toml, runner protocol
# lines) at length: no panic, no hang, one-line errors. CI runs the same tests with 20,000
# inputs each; this runs ITERATIONS (default 200,000) per parser.
#   scripts/fuzz.sh [ITERATIONS]      WRANGLE_FUZZ_SEED=N replays a run
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLE_FUZZ_ITERATIONS="${1:-200000}"
cargo test --release --locked -p wrangle --test fuzz_parsers
cargo test --release --locked -p wrangle-cli --bin wrangle random_configs
cargo test --release --locked -p wrangle-exec random_runner_lines
