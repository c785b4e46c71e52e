"""The circuit breaker on the real Valkey cache, with an injected clock (no sleeping)."""

from __future__ import annotations

import pytest

from payments.gateways.base import GatewayDeclined, GatewayRejected, GatewayUnavailable
from payments.gateways.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, guarded
from tests.races import run_together


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return Clock()


def breaker(clock, name="stripe:t1", **kwargs) -> CircuitBreaker:
    settings = {"failure_threshold": 3, "window_seconds": 60, "open_seconds": 30, **kwargs}
    return CircuitBreaker(name, clock=clock, **settings)


def fail(times: int, target: CircuitBreaker) -> None:
    for _ in range(times):
        target.record_failure()


def test_opens_at_the_threshold_and_refuses_while_open(clock):
    target = breaker(clock)
    fail(2, target)
    assert (target.state(), target.available()) == (CLOSED, True)

    target.record_failure()
    assert (target.state(), target.available()) == (OPEN, False)
    clock.advance(29)
    assert target.available() is False


def test_state_is_shared_between_instances(clock):
    fail(3, breaker(clock))
    assert breaker(clock).state() == OPEN  # another process builds its own object over the same cache keys
    assert breaker(clock, name="paypal:t1").state() == CLOSED


def test_failures_outside_the_window_do_not_add_up(clock):
    target = breaker(clock)
    fail(2, target)
    clock.advance(61)
    fail(2, target)
    assert target.state() == CLOSED
    target.record_failure()
    assert target.state() == OPEN


def test_success_closes_and_clears_the_count(clock):
    target = breaker(clock)
    fail(2, target)
    target.record_success()
    fail(2, target)
    assert target.state() == CLOSED


def test_one_probe_after_the_open_period_then_success_closes(clock):
    target = breaker(clock)
    fail(3, target)
    clock.advance(30)
    assert target.state() == HALF_OPEN
    assert target.available() is True
    assert target.available() is False  # the probe is out: everyone else waits for its answer
    target.record_success()
    assert (target.state(), target.available(), target.available()) == (CLOSED, True, True)


def test_failed_probe_reopens_for_a_new_period(clock):
    target = breaker(clock)
    fail(3, target)
    clock.advance(31)
    assert target.available() is True
    target.record_failure()
    assert (target.state(), target.available()) == (OPEN, False)
    clock.advance(29)
    assert target.available() is False
    clock.advance(2)
    assert target.available() is True


def test_exactly_one_probe_among_concurrent_threads(clock):
    fail(3, breaker(clock))
    clock.advance(30)
    threads_count = 16

    # each thread its own breaker object, as each web process would have
    answers = run_together(lambda index: [breaker(clock).available()], threads=threads_count)

    assert len(answers) == threads_count
    assert answers.count(True) == 1


def test_guarded_counts_only_outages(clock):
    target = breaker(clock)

    def raising(error):
        def call():
            raise error

        return call

    for error in (GatewayDeclined("no", code="card_declined"), GatewayRejected("bad", code="amount")) * 3:
        with pytest.raises(type(error)):
            guarded(target, raising(error))
    assert target.state() == CLOSED

    for _ in range(3):
        with pytest.raises(GatewayUnavailable):
            guarded(target, raising(GatewayUnavailable("down")))
    assert target.state() == OPEN


def test_guarded_returns_the_result_and_records_success(clock):
    target = breaker(clock)
    fail(2, target)
    assert guarded(target, lambda: "paid") == "paid"
    fail(2, target)
    assert target.state() == CLOSED
