#!/bin/sh
# divvy's dance party as a wrangle command: the ticket code of ticket number
# $1 is the SHA-1 hex digest of its decimal text. Prints "TICKET CODE".
#
#   wrangle run -n 5 --range 0..10 -- examples/dance-party/ticket-code.sh {}
#   wrangle run -n 5 --range 0..10 --keep-order -- examples/dance-party/ticket-code.sh {}
#
# DANCE_PARTY_LATENCY=0.150 adds divvy's pretend network latency per ticket.
set -eu
ticket=$1
code=$(printf '%s' "$ticket" | sha1sum | cut -d' ' -f1)
if [ -n "${DANCE_PARTY_LATENCY:-}" ]; then sleep "$DANCE_PARTY_LATENCY"; fi
printf '%6d %s\n' "$ticket" "$code"
