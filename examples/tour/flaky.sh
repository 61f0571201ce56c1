#!/bin/sh
# Fails the first time it sees a word and succeeds the next (it remembers in seen/), so
# `--retries` and the journal have something to do.
set -eu
mkdir -p seen
if [ ! -e "seen/$1" ]; then
    touch "seen/$1"
    echo "first try at $1 failed" >&2
    exit 1
fi
echo "fetched $1"
