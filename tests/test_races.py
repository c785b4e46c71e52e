"""The race harness itself (tests/races.py): a racer waiting on a lock is seen waiting, hooks run where they are
put, and a step that does not happen fails the test with a clear message instead of hanging."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from tests import races
from tests.races import (
    Meeting,
    Racer,
    StagingError,
    finish,
    run_after,
    run_before,
    run_together,
    start_together,
)

pytestmark = pytest.mark.django_db(transaction=True)

KEY = 727_001  # an advisory lock of these tests' own


def _take_the_lock() -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [KEY])
    return "took it"


def test_a_racer_waiting_for_a_lock_the_hook_holds_is_seen_waiting():
    second = Racer("second", _take_the_lock)
    seen = []

    def holding_the_lock() -> str:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [KEY])
            second.start()
            second.wait_until_blocked_or_finished()
            seen.append(second.finished)
        return "done"

    first = Racer("first", holding_the_lock).start()

    assert finish(first, second) == ["done", "took it"]
    assert seen == [False]  # it was waiting, not finished, when the first one let go


def test_a_racer_that_needs_no_lock_is_let_finish():
    second = Racer("second", lambda: "no lock needed")
    seen = []

    def holding_the_lock() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [KEY])
            second.start()
            second.wait_until_blocked_or_finished()
            seen.append(second.finished)

    finish(Racer("first", holding_the_lock).start(), second)
    assert seen == [True]


def test_a_step_that_does_not_happen_fails_with_its_own_message():
    never = threading.Event()

    def waits_for_nothing() -> None:
        races.wait_for(never.is_set, "an event nobody sets", timeout=0.3)

    with pytest.raises(StagingError, match="an event nobody sets"):
        finish(Racer("waiting", waits_for_nothing).start())
    with pytest.raises(StagingError, match="never started"):
        Racer("idle", lambda: None).wait_until_blocked_or_finished()


class _Target:
    def __init__(self):
        self.calls: list[str] = []

    def step(self, what: str) -> str:
        self.calls.append(what)
        return what


def test_hooks_run_before_or_after_the_first_call_or_every_call(monkeypatch):
    target = _Target()
    run_before(monkeypatch, target, "step", lambda what: target.calls.append(f"before {what}"))
    run_after(monkeypatch, target, "step", lambda what: target.calls.append(f"after {what}"), once=False)

    assert [target.step("a"), target.step("b")] == ["a", "b"]
    assert target.calls == ["before a", "a", "after a", "b", "after b"]


def test_at_a_meeting_each_racer_waits_until_the_others_have_arrived(monkeypatch):
    target = _Target()
    order: list[str] = []

    def work(name: str) -> None:
        target.step(name)
        order.append(f"{name} went on")

    racers = [Racer(name, lambda name=name: work(name)) for name in ("a", "b", "c")]
    meeting = Meeting(racers)
    run_after(
        monkeypatch,
        target,
        "step",
        lambda what: (order.append(f"{what} arrived"), meeting.arrive()),
        once=False,
    )

    finish(*start_together(racers))

    assert order.index("a went on") > max(order.index(f"{name} arrived") for name in "abc")
    assert sorted(order) == sorted([f"{name} {verb}" for name in "abc" for verb in ("arrived", "went on")])


def test_at_a_meeting_a_racer_waiting_on_our_lock_is_not_waited_for(monkeypatch):
    target = _Target()
    order: list[str] = []

    def work() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [KEY])  # the second one waits here
            target.step(Racer.current().name)
            order.append(f"{Racer.current().name} went on")  # before the commit lets the other one in

    racers = [Racer(name, work) for name in ("a", "b")]
    meeting = Meeting(racers)
    run_after(
        monkeypatch,
        target,
        "step",
        lambda what: (order.append(f"{what} arrived"), meeting.arrive()),
        once=False,
    )

    finish(*start_together(racers))

    first = order[0].split()[0]
    second = "b" if first == "a" else "a"
    assert order == [f"{first} arrived", f"{first} went on", f"{second} arrived", f"{second} went on"]


def test_run_together_reports_each_threads_outcomes_in_thread_order():
    def work(index: int) -> list[object]:
        if index == 2:
            raise ValueError("three")
        return [index, index * 10]

    outcomes = run_together(work, threads=4)

    assert outcomes[:4] == [0, 0, 1, 10] and outcomes[5:] == [3, 30]
    assert isinstance(outcomes[4], ValueError)
