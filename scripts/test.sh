#!/usr/bin/env bash
# The whole test suite: unit tests, the store conformance suite on every store (memory,
# SQLite, and PostgreSQL, Redis and MariaDB started from the installed binaries in temp
# dirs on free ports; installed with apt-get when missing), the worker, `wrangle run` and
# CLI end-to-end tests, multi-process and chaos tests, the HTTP API and the dashboard in
# headless Chromium, the Python and Ruby clients, schemathesis against the API's OpenAPI
# document, the README tour and install step.
# Servers are required: one that cannot start fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v mariadbd >/dev/null || command -v mysqld >/dev/null || need_apt+=(mariadb-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v ruby >/dev/null || need_apt+=(ruby)   # the example Ruby runner is tested
command -v tmux >/dev/null || need_apt+=(tmux)   # the console and dashboard are driven in tmux
command -v script >/dev/null || need_apt+=(bsdutils)   # progress bars on a pseudo-terminal
command -v man >/dev/null || need_apt+=(man-db)     # the manual pages are rendered
command -v parallel >/dev/null || need_apt+=(parallel)  # wrangle run is compared with GNU parallel
command -v chromium >/dev/null || need_apt+=(chromium)  # the dashboard is tested in a real browser
command -v npm >/dev/null || need_apt+=(npm)            # which playwright-core drives
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]} (needed by the store tests)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

# playwright-core (from the npm registry, pinned) drives Debian's Chromium in the dashboard
# test; it is kept outside the repository.
playwright_dir="${WRANGLE_PLAYWRIGHT:-$HOME/.cache/wrangle/playwright}"
if [ ! -d "$playwright_dir/node_modules/playwright-core" ]; then
  echo "installing playwright-core into $playwright_dir (for the dashboard's browser test)"
  mkdir -p "$playwright_dir"
  (cd "$playwright_dir" && { [ -f package.json ] || echo '{"private": true}' > package.json; } &&
    npm install --no-audit --no-fund --silent playwright-core@1.65.2)
fi
export WRANGLE_PLAYWRIGHT="$playwright_dir"

export WRANGLE_TEST_REQUIRE_SERVERS=1
cargo test --workspace --locked "$@"

# The HTTP API against its own OpenAPI document (schemathesis from PyPI): no 5xx, answers
# that match the document, bad input refused. The binary is the one the tests just built.
if [ $# -eq 0 ]; then
  scripts/schemathesis.sh "${CARGO_TARGET_DIR:-target}/debug/wrangle" 25
fi

# The README's install step, as written (into a throwaway root instead of ~/.cargo), and
# the binary it installs answering. The README's tour is run by crates/wrangle-cli/tests/readme.rs.
if [ $# -eq 0 ]; then
  install_root=$(mktemp -d)
  trap 'rm -rf "$install_root"' EXIT
  install=$(awk '/^## Install/{on=1} on&&/^```sh/{getline; print; exit}' README.md)
  case "$install" in
    "cargo install "*) ;;
    *) echo "README.md: no 'cargo install' line under ## Install (found: '$install')" >&2; exit 1 ;;
  esac
  echo "README install step: $install"
  CARGO_INSTALL_ROOT="$install_root" bash -c "$install"
  "$install_root/bin/wrangle" --version
fi
