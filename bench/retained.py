"""What finished tasks kept in the embedded SQLite store cost (see bench/retained.sh).

For each retained count N, in a fresh store: N completed tasks are written straight into
the table (the store's own triggers count them, as they count every task), then

- `wrangle status --json` (open the store, read the queue statistics), median of 7;
- the same statistics the old way, counting every task with GROUP BY (the baseline);
- 1,000 no-op tasks submitted in one batch and run by one worker (`--exec true`, 4
  runners): tasks per second from the submit to the last completion.

The table shows each figure and its ratio to the same figure with nothing retained.
"""

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

WRANGLE = sys.argv[1]
RETAINED = [int(n.replace("_", "")) for arg in sys.argv[2:] for n in arg.split()]
TASKS = 1000


def wrangle(store, *args, **kwargs):
    return subprocess.run(
        [WRANGLE, "--store", store, *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "WRANGLE_LOG": "warn"},
        **kwargs,
    )


def fill(path, n):
    db = sqlite3.connect(path)
    now = int(time.time() * 1000) - 3_600_000
    db.execute(
        """WITH RECURSIVE i(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM i WHERE x < ?)
           INSERT INTO tasks (queue, kind, payload, state, run_at, attempt, max_attempts,
                              result, worker, created_at, started_at, finished_at)
           SELECT 'default', 'old', '{}', 'completed', ?2, 1, 1, 'null', 'w', ?2, ?2, ?2
           FROM i""",
        (n, now),
    )
    db.commit()
    db.close()


def timed(run, times=7):
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def full_count(path):
    db = sqlite3.connect(path)
    db.execute("SELECT queue, state, count(*) FROM tasks GROUP BY queue, state").fetchall()
    db.close()


def throughput(store, directory, retained):
    worker = subprocess.Popen(
        [WRANGLE, "--store", store, "worker", "--exec", "true", "-n", "4",
         "--keep-completed", "forever", "--name", "bench"],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        items = "".join(f'{{"n": {i}}}\n' for i in range(TASKS))
        started = time.perf_counter()
        wrangle(store, "submit", "new", "--batch", "-", input=items)
        while True:
            stats = json.loads(wrangle(store, "status", "--json").stdout)
            done = sum(q["counts"].get("completed", 0) for q in stats["queues"])
            if done >= TASKS + retained:
                break
            time.sleep(0.02)
        return TASKS / (time.perf_counter() - started)
    finally:
        worker.terminate()
        worker.wait()


rows = []
for retained_now in RETAINED:
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "w.db")
        store = f"sqlite://{path}"
        wrangle(store, "submit", "warmup", "{}")  # creates the store at the current schema
        wrangle(store, "tasks", "cancel", "1")
        wrangle(store, "tasks", "prune")
        fill(path, retained_now)
        status = timed(lambda: wrangle(store, "status", "--json"))
        counted = timed(lambda: full_count(path))
        rate = throughput(store, directory, retained_now)
        rows.append((retained_now, status, counted, rate))

base = rows[0]
print(f"SQLite store, {TASKS} no-op tasks per throughput run (bench/retained.sh)")
print(f"{'retained':>12} {'status ms':>10} {'x':>6} {'full count ms':>14} {'x':>6} {'tasks/s':>9} {'x':>6}")
for retained_now, status, counted, rate in rows:
    print(
        f"{retained_now:>12,} {status * 1000:>10.1f} {status / base[1]:>6.2f} "
        f"{counted * 1000:>14.1f} {counted / base[2]:>6.2f} {rate:>9.0f} {rate / base[3]:>6.2f}"
    )
