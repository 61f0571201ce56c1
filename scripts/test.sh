#!/usr/bin/env bash
# The whole test suite: unit tests, the store conformance suite on every store (memory,
# SQLite, and PostgreSQL, Redis and MariaDB started from the installed binaries in temp
# dirs on free ports; installed with apt-get when missing), the worker, `wrangle run` and
# CLI end-to-end tests, multi-process and chaos tests. Servers are required: one that
# cannot start fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v mariadbd >/dev/null || command -v mysqld >/dev/null || need_apt+=(mariadb-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v ruby >/dev/null || need_apt+=(ruby)   # the example Ruby runner is tested
command -v tmux >/dev/null || need_apt+=(tmux)   # the console and dashboard are driven in tmux
command -v script >/dev/null || need_apt+=(bsdutils)   # progress bars on a pseudo-terminal
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]} (needed by the store tests)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

export WRANGLE_TEST_REQUIRE_SERVERS=1
cargo test --workspace --locked "$@"
