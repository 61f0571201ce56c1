#!/usr/bin/env python3
"""A wrangle runner in Python: divvy's dance-party ticket codes, as a long-lived process.

wrangle starts one runner per runner slot and keeps it. Do the expensive loading (a
model, an app, connections) once at the top; then wrangle sends one JSON line per task
on stdin and reads one JSON line per answer on stdout. stderr is your log. Protocol:
docs/runner-protocol.md.

    seq 0 9 | wrangle run -n 2 --runner 'python3 examples/runners/runner.py'
    wrangle worker --config wrangle.toml     # with [kinds.tickets] runner = ["python3", "examples/runners/runner.py"]
"""
import hashlib
import json
import os
import sys


def perform(kind, payload):
    """Handles one task and returns its result (any JSON value), or raises to fail it.

    `wrangle run` sends the item: a line of text, or a range block {"start": S, "end": E}.
    """
    if isinstance(payload, dict) and "start" in payload:
        tickets = range(payload["start"], payload["end"])
    else:
        tickets = [payload]
    return "\n".join(
        "%6s %s" % (t, hashlib.sha1(str(t).encode()).hexdigest()) for t in tickets
    )


def main():
    print("ticket runner %s ready (pid %d)" % (os.environ.get("WRANGLE_RUNNER", "?"), os.getpid()),
          file=sys.stderr, flush=True)
    out = sys.stdout
    for line in sys.stdin:
        task = json.loads(line)
        try:
            reply = {"id": task["id"], "ok": True, "result": perform(task["kind"], task["payload"])}
        except Exception as error:  # a failed task, not a dead runner
            reply = {"id": task["id"], "ok": False, "error": "%s: %s" % (type(error).__name__, error)}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
