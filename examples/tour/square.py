"""A long-lived runner: loaded once per runner slot, then answers one JSON line per task.

wrangle writes {"id": .., "kind": .., "payload": .., "attempt": ..} on stdin and reads
{"id": .., "ok": true, "result": ..} (or "ok": false with an "error") on stdout; stderr
is the runner's log. See docs/runner-protocol.md.
"""
import json
import sys

print("square runner ready", file=sys.stderr, flush=True)
for line in sys.stdin:
    task = json.loads(line)
    try:
        n = int(task["payload"])
        reply = {"id": task["id"], "ok": True, "result": n * n}
    except (TypeError, ValueError) as error:
        reply = {"id": task["id"], "ok": False, "error": str(error)}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
