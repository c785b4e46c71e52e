"""For tests with a real Celery worker (``celery.contrib.testing.worker.start_worker``, solo pool, in this process):
wait until it has nothing left to do, so a transactional test's flush never races a task still writing."""

from __future__ import annotations

import time

from celery.worker import state


def wait_until_idle(timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        busy = state.active_requests or state.reserved_requests or state.scheduled_requests
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 0.3:  # a finished task may still be publishing the next one
            return
        time.sleep(0.05)
    raise AssertionError(f"the worker still had tasks after {timeout:.0f} s")
