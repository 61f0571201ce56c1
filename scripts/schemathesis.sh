#!/usr/bin/env bash
# Property-based tests of `wrangle serve` against its own OpenAPI document with
# schemathesis (from PyPI, installed into a cache outside the repository): a bounded
# number of generated requests per operation, checked for no 5xx answer, answers that
# match the document (status, content type, body schema), and bad input refused.
# Usage: scripts/schemathesis.sh [WRANGLE_BINARY] [EXAMPLES]   (default: 25 per operation)
# The event stream (endless) and the long poll (waits up to its timeout) are left out.
set -euo pipefail
cd "$(dirname "$0")/.."
wrangle=${1:-${CARGO_TARGET_DIR:-target}/debug/wrangle}
examples=${2:-25}
venv="${WRANGLE_SCHEMATHESIS:-$HOME/.cache/wrangle/schemathesis}"
if [ ! -x "$venv/bin/st" ]; then
  echo "installing schemathesis into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'schemathesis==4.*'
fi

dir=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
store="sqlite://$dir/w.db"
# Something to read: tasks in several states, a job.
"$wrangle" submit greet '{"n": 1}' --store "$store" > /dev/null
"$wrangle" job create scan --range 0..100 --block 10 --kind scan --store "$store" > /dev/null
"$wrangle" serve --store "$store" --bind "127.0.0.1:$port" 2> "$dir/serve.log" &
server=$!
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" > /dev/null 2>&1 && break
  sleep 0.1
done

# From the temp dir: schemathesis keeps its example database in the working directory.
cd "$dir"
"$venv/bin/st" run "http://127.0.0.1:$port/api/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection \
  --exclude-path /api/events --exclude-path '/api/tasks/{id}/wait' \
  --max-examples "$examples" --seed 2026 --request-timeout 20 --no-color \
  --phases examples,coverage,fuzzing
