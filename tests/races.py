"""Race tests: real threads, each with its own database connection, against the same rows.

Two ways to stage a race, neither of which sleeps:

- **Started together.** ``run_together(work, threads)`` releases every thread at once (a barrier) and takes
  whatever interleaving the scheduler gives; the test asserts what must hold for *every* interleaving. For many
  contenders (32 threads after the last seats) and for races whose interleavings are too many to list.
  ``attempt_together(tenant, *calls)`` does the same for a few different calls, each one ``attempt``-ed.
- **An explicit interleaving.** ``Racer`` threads are started by the test or by a hook; ``run_before`` /
  ``run_after`` run a hook just before or just after a function that the code under test calls (the idea of
  Saleor's ``RunBefore`` / ``RunAfter``); in the hook, ``racer.wait_until_blocked_or_finished()`` lets the other
  side go as far as it can: until PostgreSQL shows its backend waiting on a lock
  (``pg_stat_activity.wait_event_type = 'Lock'``), or until it has finished. Then the hook returns and the first
  side carries on. ``Meeting`` holds several racers at one point until each of the others has reached it too,
  waits on a lock or has finished. Every step waits for a condition, never for a time: the test cannot pass or
  fail by timing, and a step that does not happen fails the test after ``TIMEOUT`` seconds with a
  ``StagingError`` that says which step, instead of hanging.

PostgreSQL shows a backend's wait event to sessions of the same role; the racers and the monitoring connection
all connect as the runtime role, so this needs no privilege beyond the app's.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import psycopg
from django.db import connections
from django.db.backends.signals import connection_created
from django.dispatch import receiver

from core.errors import DomainError
from tenants.context import tenant_context

THREADS = 32  # ≥ 32 as asked, and few enough to share the server's 100 connections with parallel test runs
# Seconds a staged step may take before the test fails (the steps themselves take milliseconds).
TIMEOUT = 10.0
START_TIMEOUT = 30.0  # seconds for every thread of run_together to reach the starting line
FINISH_TIMEOUT = 60.0  # seconds a racer may take to finish (many threads on two busy cores)
POLL = 0.005  # seconds between two looks at a condition

_here = threading.local()  # .racer: the Racer whose thread this is


class StagingError(AssertionError):
    """A step of a staged race did not happen in time: the race did not run as the test describes it."""


def wait_for(
    condition: Callable[[], object], what: str | Callable[[], str], timeout: float = TIMEOUT
) -> None:
    """Return once ``condition()`` is true. After ``timeout`` seconds fail, saying what was awaited: ``what``, or
    what ``what()`` says then."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise StagingError(
                f"timed out after {timeout:.0f} s waiting for {what() if callable(what) else what}"
            )
        time.sleep(POLL)  # polling a condition, not widening a window


@contextlib.contextmanager
def _monitor() -> Iterator[psycopg.Connection]:
    """A connection of its own to the test database, as the runtime role, outside every racer's transaction and in
    autocommit: each query sees the server's activity as it is now (pg_stat_activity is read once per
    transaction)."""
    params = connections["default"].get_connection_params()
    keep = ("dbname", "user", "password", "host", "port")
    with psycopg.connect(**{key: params[key] for key in keep if key in params}, autocommit=True) as monitor:
        yield monitor


class Racer:
    """One side of a race: ``work()`` in a thread of its own, hence with a database connection of its own,
    started when the test or a hook says. ``outcome`` is what ``work`` returned or the exception it raised."""

    def __init__(self, name: str, work: Callable[[], object]):
        self.name = name
        self._work = work
        self._thread = threading.Thread(target=self._run, name=f"racer {name}", daemon=True)
        self._starting_line: threading.Barrier | None = None
        self._finished = threading.Event()
        self.backend_pid: int | None = None  # of its current database connection (see _remember_backend)
        self.outcome: object = None

    def __repr__(self) -> str:
        return f"<Racer {self.name}>"

    @staticmethod
    def current() -> Racer | None:
        """The racer whose thread runs this code; None outside racers."""
        return getattr(_here, "racer", None)

    def start(self) -> Racer:
        self._thread.start()
        return self

    def _run(self) -> None:
        _here.racer = self
        try:
            if self._starting_line is not None:
                self._starting_line.wait(timeout=START_TIMEOUT)
            self.outcome = self._work()
        except BaseException as error:  # the test inspects it
            self.outcome = error
        finally:
            connections.close_all()
            self._finished.set()

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def join(self, timeout: float = FINISH_TIMEOUT) -> object:
        """Wait until the racer has finished; its outcome."""
        if not self._finished.wait(timeout):
            raise StagingError(f"{self.name} did not finish within {timeout:.0f} s; {self.activity()}")
        return self.outcome

    def blocked(self, monitor: psycopg.Connection) -> bool:
        """Is this racer's backend waiting on a lock (a row, another transaction, an advisory lock) right now?"""
        if self.backend_pid is None:
            return False
        row = monitor.execute(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [self.backend_pid]
        ).fetchone()
        return row is not None and row[0] == "Lock"

    def activity(self) -> str:
        """What PostgreSQL says this racer's backend is doing, for messages."""
        if self.finished:
            return f"{self.name} has finished"
        if self.backend_pid is None:
            return f"{self.name} has no database connection yet"
        with _monitor() as monitor:
            row = monitor.execute(
                "SELECT state, wait_event_type, wait_event, pg_blocking_pids(pid), left(query, 160)"
                " FROM pg_stat_activity WHERE pid = %s",
                [self.backend_pid],
            ).fetchone()
        if row is None:
            return f"{self.name}'s backend {self.backend_pid} is gone"
        state, wait_type, wait_event, blockers, query = row
        return (
            f"{self.name}'s backend {self.backend_pid} is {state}, waiting on {wait_type}/{wait_event} "
            f"(blocked by {blockers}), last query: {query}"
        )

    def wait_until_blocked_or_finished(self, timeout: float = TIMEOUT) -> None:
        """Let this (started) racer go as far as it can: return once its backend waits on a lock, typically one
        the caller holds, or once it has finished."""
        if not self.started:
            raise StagingError(f"{self.name} was never started")
        with _monitor() as monitor:
            wait_for(
                lambda: self.finished or self.blocked(monitor),
                lambda: f"{self.name} to wait on a lock or finish; {self.activity()}",
                timeout,
            )


@receiver(connection_created)
def _remember_backend(sender, connection, **kwargs) -> None:
    """Each racer knows the backend of its connection, also after a reconnect."""
    racer = Racer.current()
    if racer is not None and connection.alias == "default":
        racer.backend_pid = connection.connection.info.backend_pid


def start_together(racers: Iterable[Racer]) -> list[Racer]:
    """Start the racers so that their work begins at the same moment (a barrier)."""
    racers = list(racers)
    starting_line = threading.Barrier(len(racers))
    for racer in racers:
        racer._starting_line = starting_line
        racer.start()
    return racers


def finish(*racers: Racer) -> list[object]:
    """Each racer's outcome, in the order given, once all have finished. A step of the staging that failed in a
    racer (a hook that timed out) fails the test here, with its own message."""
    outcomes = [racer.join() for racer in racers]
    for outcome in outcomes:
        if isinstance(outcome, StagingError):
            raise outcome
    return outcomes


class Meeting:
    """A point in the code under test that each racer reaches unless the code made it wait for another's lock
    first. ``arrive()``, from a hook in a racer, returns once each of the other racers has arrived too, waits on a
    lock or has finished: the interleaving where all of them are past their first steps at once if the code lets
    that happen, the serialised one if the code serialises them before this point."""

    def __init__(self, racers: Iterable[Racer]):
        self.racers = list(racers)
        self._arrived: set[Racer] = set()
        self._lock = threading.Lock()

    def arrive(self, *args, **kwargs) -> None:  # takes (and ignores) the arguments of a hooked call
        me = Racer.current()
        if me not in self.racers:
            raise StagingError(f"{threading.current_thread().name} is not one of {self.racers}")
        with self._lock:
            self._arrived.add(me)
        others = [racer for racer in self.racers if racer is not me]
        with _monitor() as monitor:
            wait_for(
                lambda: all(
                    racer in self._arrived or racer.finished or racer.blocked(monitor) for racer in others
                ),
                lambda: f"the others to arrive, wait on a lock or finish; {[r.activity() for r in others]}",
            )


def _hook(
    monkeypatch, owner: Any, name: str, hook: Callable[..., object], *, once: bool, after: bool
) -> None:
    original = getattr(owner, name)
    lock, calls = threading.Lock(), [0]

    @functools.wraps(original)
    def hooked(*args, **kwargs):
        with lock:
            calls[0] += 1
            with_hook = calls[0] == 1 or not once
        if with_hook and not after:
            hook(*args, **kwargs)
        result = original(*args, **kwargs)
        if with_hook and after:
            hook(*args, **kwargs)
        return result

    monkeypatch.setattr(owner, name, hooked)


def run_before(monkeypatch, owner: Any, name: str, hook: Callable[..., object], *, once: bool = True) -> None:
    """Patch ``owner.<name>`` so that ``hook`` runs, with the same arguments, just before it: on the first call
    only, whichever thread makes it, or on every call with ``once=False``. As with any monkeypatch, patch the name
    where the code under test looks it up."""
    _hook(monkeypatch, owner, name, hook, once=once, after=False)


def run_after(monkeypatch, owner: Any, name: str, hook: Callable[..., object], *, once: bool = True) -> None:
    """Like ``run_before``, with ``hook`` run just after the call has returned (not if it raised)."""
    _hook(monkeypatch, owner, name, hook, once=once, after=True)


# --- many threads started together -----------------------------------------------------------------------------


def run_together(work: Callable[[int], list[object]], threads: int = THREADS) -> list[object]:
    """Run ``work(thread_index)`` in ``threads`` threads released at once by a barrier; returns every outcome the
    calls reported, thread by thread (an exception a thread raised stands for its list)."""
    racers = start_together(
        Racer(f"thread {index}", functools.partial(work, index)) for index in range(threads)
    )
    return [
        item
        for outcome in finish(*racers)
        for item in ([outcome] if isinstance(outcome, BaseException) else outcome)
    ]


def attempt_together(tenant, *calls: Callable[[], object]) -> list[object]:
    """Each call in a thread of its own, all released at once, each in its own tenant transaction (``attempt``):
    their outcomes, in the order the calls are given."""
    return run_together(lambda index: [attempt(tenant, calls[index])], threads=len(calls))


def attempt(tenant, call: Callable[[], object]) -> object:
    """One call in its own tenant transaction: its result, or the DomainError's code. Anything else (an
    IntegrityError, a deadlock) is returned as the exception itself, which the tests reject (``unexpected``)."""
    try:
        with tenant_context(tenant):
            return call()
    except DomainError as error:
        return error.code
    except Exception as error:
        return error


def unexpected(outcomes: list[object]) -> list[object]:
    """The outcomes that are exceptions (not refusals with a code)."""
    return [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
