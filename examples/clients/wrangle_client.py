"""A client of `wrangle serve` in Python, with nothing but the standard library.

    from wrangle_client import Wrangle
    w = Wrangle("http://127.0.0.1:7077", token=None)
    task = w.run("pi", {"digits": 50})      # submit, then wait for the outcome
    print(task["result"])

Errors from the server are JSON problem objects; they raise WrangleError with their
one-line detail. A wait that outlasts the server's long poll (at most 5 minutes per
request) simply asks again.
"""

import json
import time
import urllib.error
import urllib.request


class WrangleError(Exception):
    """The server refused a request, or a task did not complete."""


class Wrangle:
    def __init__(self, url, token=None, timeout=330):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            try:
                detail = json.loads(err.read()).get("detail", err.reason)
            except ValueError:
                detail = err.reason
            raise WrangleError(f"{err.code}: {detail}") from None

    def submit(self, kind, payload=None, **options):
        """Enqueues a task; returns its id. Options as `wrangle submit`'s: queue,
        priority, delay, at, retries, timeout, unique."""
        _, enqueued = self._call("POST", "/api/tasks", dict(options, kind=kind, payload=payload))
        return enqueued["id"]

    def wait(self, task_id, timeout=None):
        """Waits until the task is completed, dead or cancelled; returns it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 300 if deadline is None else max(1, min(300, int(deadline - time.monotonic())))
            status, task = self._call("GET", f"/api/tasks/{task_id}/wait?timeout={left}s")
            if status == 200 or (deadline is not None and time.monotonic() >= deadline):
                return task

    def run(self, kind, payload=None, timeout=None, **options):
        """Submits a task and waits for it; returns the task, or raises if it failed."""
        task = self.wait(self.submit(kind, payload, **options), timeout)
        if task["state"] != "completed":
            raise WrangleError(f"task {task['id']} is {task['state']}: {task.get('error')}")
        return task
