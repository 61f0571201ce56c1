#!/bin/sh
# A wrangle runner in POSIX shell: divvy's dance-party ticket codes, as a long-lived
# process. Protocol: docs/runner-protocol.md. wrangle writes each task as one line of
# JSON with its keys in this order: {"attempt":N,"id":N,"kind":"..","payload":..}.
# A shell has no JSON parser, so this one takes the id and a text or number payload apart
# with parameter expansion (no process per task for that); use Python or Ruby for
# anything richer.
#
#   seq 0 9 | wrangle run -n 2 --runner 'sh examples/runners/runner.sh'
echo "ticket runner ${WRANGLE_RUNNER:-?} ready (pid $$)" >&2
while IFS= read -r line; do
  id=${line#*\"id\":}
  id=${id%%,*}
  payload=${line#*\"payload\":}
  payload=${payload%\}}
  payload=${payload#\"}
  payload=${payload%\"}
  code=$(printf '%s' "$payload" | sha1sum | cut -d' ' -f1)
  printf '{"id":%s,"ok":true,"result":"%6s %s"}\n' "$id" "$payload" "$code"
done
