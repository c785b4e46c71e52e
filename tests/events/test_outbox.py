"""The outbox with a real Celery worker (in this process, its own thread and connection) on the real broker:
events are written with the change, relayed once, swept when the relay request was lost, handled once per
consumer even when delivered twice, and parked as dead letters when a consumer keeps failing."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Callable

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connections, transaction

from events import outbox, tasks
from events.models import DeadLetter, OutboxEvent, ProcessedEvent
from events.registry import consumer
from tenants.context import tenant_context
from tenants.models import Membership
from tests.factories import make_tenant
from tests.races import Racer, finish, run_before
from tourops.celery import app

TIMEOUT = 10
_calls: dict[str, list[str]] = {}
_failures: dict[str, int] = {}


@consumer("tests.happened", name="tests.recorder")
def record(event) -> None:
    _calls.setdefault(event.payload["key"], []).append(str(event.pk))


@consumer("tests.happened", name="tests.flaky")
def flaky(event) -> None:
    key = event.payload["key"]
    if _failures.get(key, 0) > 0:
        _failures[key] -= 1
        raise RuntimeError("the mail server is down")
    _calls.setdefault(f"flaky:{key}", []).append(str(event.pk))


@consumer("tests.chained", name="tests.chainer")
def chain(event) -> None:
    from tenants.models import Membership as Aggregate

    outbox.publish("tests.happened", Aggregate.objects.first(), {"key": event.payload["key"] + ":next"})


@app.task(name="tests.events.close_connections")
def close_connections() -> None:
    connections.close_all()


@pytest.fixture(scope="module")
def worker():
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=TIMEOUT) as running:
        yield running
        close_connections.delay()
        time.sleep(0.5)


def _wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _announce(tenant, key: str) -> OutboxEvent:
    with tenant_context(tenant):
        aggregate = Membership.objects.first()
        return outbox.publish("tests.happened", aggregate, {"key": key})


@pytest.fixture
def tenant(transactional_db):
    return make_tenant()


def test_publish_belongs_in_the_changes_transaction(tenant):
    with tenant_context(tenant):
        aggregate = Membership.objects.first()
    with pytest.raises(RuntimeError, match="belongs in the transaction"), tenant_id_only(tenant):
        outbox.publish("tests.happened", aggregate, {"key": "outside"})

    with tenant_context(tenant):
        with pytest.raises(ValueError), transaction.atomic():
            outbox.publish("tests.happened", aggregate, {"key": "rolled back"})
            raise ValueError("the change failed: its event goes with it")
        assert not OutboxEvent.objects.exists()


@contextlib.contextmanager
def tenant_id_only(tenant):
    """The tenant is known (context variable) but no transaction is open: publishing here would be a bug."""
    from tenants.context import _current_tenant_id

    token = _current_tenant_id.set(tenant.pk)
    try:
        yield
    finally:
        _current_tenant_id.reset(token)


def test_an_event_is_relayed_after_commit_and_each_consumer_runs_once(worker, tenant):
    key = uuid.uuid4().hex

    event = _announce(tenant, key)

    _wait_for(lambda: _calls.get(key) and _calls.get(f"flaky:{key}"), "both consumers")
    with tenant_context(tenant):
        _wait_for(lambda: OutboxEvent.objects.get(pk=event.pk).published_at is not None, "published")
        # A consumer records its call before its transaction (and claim row) commits: wait for the commits.
        _wait_for(lambda: ProcessedEvent.objects.filter(event=event).count() == 2, "both claims committed")
    assert _calls[key] == [str(event.pk)]


def test_relaying_twice_publishes_once(worker, tenant, monkeypatch):
    monkeypatch.setattr(outbox, "_request_relay", lambda *args: None)  # no relay request: we relay by hand
    key = uuid.uuid4().hex
    event = _announce(tenant, key)

    with tenant_context(tenant):
        first = outbox.dispatch([event.pk])
    with tenant_context(tenant):
        second = outbox.dispatch([event.pk])

    assert (first, second) == (1, 0)
    _wait_for(lambda: _calls.get(key), "the consumer")
    time.sleep(0.3)
    assert _calls[key] == [str(event.pk)]


def test_a_lost_relay_request_is_made_good_by_the_sweep(worker, tenant, monkeypatch):
    monkeypatch.setattr(outbox, "_request_relay", lambda *args: None)  # crash between commit and enqueue
    monkeypatch.setattr(tasks, "SWEEP_AFTER", dt.timedelta(0))
    key = uuid.uuid4().hex
    event = _announce(tenant, key)
    time.sleep(0.3)
    assert key not in _calls

    assert tasks.sweep_outbox() >= 1

    _wait_for(lambda: _calls.get(key), "the consumer after the sweep")
    assert tasks.sweep_outbox() == 0
    with tenant_context(tenant):
        assert OutboxEvent.objects.get(pk=event.pk).published_at is not None


def test_an_event_delivered_twice_is_handled_once(worker, tenant, monkeypatch):
    monkeypatch.setattr(outbox, "_request_relay", lambda *args: None)
    key = uuid.uuid4().hex
    event = _announce(tenant, key)
    headers = {"tenant_id": str(tenant.pk)}

    results = [tasks.handle.apply_async((str(event.pk), "tests.recorder"), headers=headers) for _ in range(3)]

    _wait_for(lambda: _calls.get(key), "the consumer")
    time.sleep(0.5)
    assert _calls[key] == [str(event.pk)]
    assert len(results) == 3
    with tenant_context(tenant):
        assert ProcessedEvent.objects.filter(event=event, consumer="tests.recorder").count() == 1


def test_a_consumer_that_keeps_failing_is_retried_then_dead_lettered(worker, tenant, monkeypatch):
    monkeypatch.setattr(tasks, "retry_delay", lambda attempt: 0)
    monkeypatch.setattr(tasks, "MAX_ATTEMPTS", 3)
    recovering, failing = uuid.uuid4().hex, uuid.uuid4().hex
    _failures[recovering] = 1  # fails once, then succeeds on the retry
    _failures[failing] = 99

    _announce(tenant, recovering)
    event = _announce(tenant, failing)

    _wait_for(lambda: _calls.get(f"flaky:{recovering}"), "the retried consumer")
    with tenant_context(tenant):
        _wait_for(lambda: DeadLetter.objects.filter(event=event).exists(), "the dead letter")
        letter = DeadLetter.objects.get(event=event)
        assert (letter.consumer, letter.attempts) == ("tests.flaky", 3)
        assert "mail server is down" in letter.error
        assert not ProcessedEvent.objects.filter(event=event, consumer="tests.flaky").exists()
        assert ProcessedEvent.objects.filter(event=event, consumer="tests.recorder").exists()


def test_events_of_one_tenant_are_not_relayed_by_another(worker, transactional_db, monkeypatch):
    monkeypatch.setattr(outbox, "_request_relay", lambda *args: None)
    a, b = make_tenant(), make_tenant()
    event = _announce(a, uuid.uuid4().hex)

    with tenant_context(b):
        assert outbox.dispatch([event.pk]) == 0
    with tenant_context(a):
        assert OutboxEvent.objects.get(pk=event.pk).published_at is None


@consumer(name="tests.bad_reference")
def bad_reference(event) -> None:
    """Writes a row whose foreign key points nowhere: PostgreSQL only notices at commit (deferred constraint)."""
    DeadLetter.objects.create(event_id=uuid.uuid4(), consumer="x", error="x", attempts=1)


def test_retry_limits_agree():
    assert tasks.handle.max_retries == tasks.MAX_ATTEMPTS - 1


def test_a_task_without_its_tenant_fails_loudly_instead_of_claiming_the_event_handled(tenant, monkeypatch):
    from tenants.context import NoTenantError

    monkeypatch.setattr(outbox, "_request_relay", lambda *args: None)
    event = _announce(tenant, uuid.uuid4().hex)
    other = make_tenant()

    with pytest.raises(NoTenantError):
        tasks.handle.apply((str(event.pk), "tests.recorder")).get()
    with pytest.raises(tasks.EventNotVisible):
        tasks.handle.apply((str(event.pk), "tests.recorder"), headers={"tenant_id": str(other.pk)}).get()
    with tenant_context(tenant):
        assert not ProcessedEvent.objects.filter(event=event).exists()


def test_an_unknown_consumer_goes_straight_to_the_dead_letters(tenant, monkeypatch):
    monkeypatch.setattr(outbox, "_request_relay", lambda *args: None)
    event = _announce(tenant, uuid.uuid4().hex)

    result = tasks.handle.apply(
        (str(event.pk), "tests.renamed_away"), headers={"tenant_id": str(tenant.pk)}
    ).get()

    assert result == "dead letter"
    with tenant_context(tenant):
        assert DeadLetter.objects.get(event=event).consumer == "tests.renamed_away"


def test_a_constraint_broken_at_commit_is_retried_and_dead_lettered_not_lost(tenant, monkeypatch):
    monkeypatch.setattr(outbox, "_request_relay", lambda *args: None)
    monkeypatch.setattr(tasks, "retry_delay", lambda attempt: 0)
    monkeypatch.setattr(tasks, "MAX_ATTEMPTS", 2)
    event = _announce(tenant, uuid.uuid4().hex)

    result = tasks.handle.apply((str(event.pk), "tests.bad_reference"), headers={"tenant_id": str(tenant.pk)})

    assert result.get() == "dead letter"
    with tenant_context(tenant):
        letter = DeadLetter.objects.get(event=event)
        assert "IntegrityError" in letter.error and letter.attempts == 2
        assert not ProcessedEvent.objects.filter(event=event, consumer="tests.bad_reference").exists()


def test_the_sweep_goes_on_past_a_failing_tenant(monkeypatch, transactional_db):
    monkeypatch.setattr(outbox, "_request_relay", lambda *args: None)
    monkeypatch.setattr(tasks, "SWEEP_AFTER", dt.timedelta(0))
    first, second = make_tenant(), make_tenant()
    event = _announce(second, uuid.uuid4().hex)
    real_dispatch, calls = tasks.dispatch, []

    def dispatch(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("deadlock detected")
        return real_dispatch(**kwargs)

    monkeypatch.setattr(tasks, "dispatch", dispatch)
    monkeypatch.setattr(tasks.handle, "apply_async", lambda *args, **kwargs: None)  # no worker needed here

    tasks.sweep_outbox()

    with tenant_context(second):
        assert OutboxEvent.objects.get(pk=event.pk).published_at is not None
    assert first.pk != second.pk


# key -> the hook that tests.pausing runs (once) inside its transaction
_inside_consumer: dict[str, Callable[[], object]] = {}


@consumer(name="tests.pausing")
def pausing(event) -> None:
    """Records its call, then runs the test's hook for its key (once) inside the consumer's transaction."""
    _calls.setdefault(f"pausing:{event.payload['key']}", []).append(str(event.pk))
    hook = _inside_consumer.pop(event.payload["key"], None)
    if hook is not None:
        hook()


def test_two_deliveries_at_the_same_moment_run_the_consumer_once(tenant, monkeypatch):
    monkeypatch.setattr(outbox, "_request_relay", lambda *args: None)
    key = uuid.uuid4().hex
    event = _announce(tenant, key)

    def deliver():
        headers = {"tenant_id": str(tenant.pk)}
        return tasks.handle.apply((str(event.pk), "tests.pausing"), headers=headers).get()

    second = Racer("the second delivery", deliver)

    def let_the_second_arrive():
        """The first delivery is inside its transaction: the second one arrives now and runs until it waits on
        the first (or ends); then the first carries on and commits."""
        second.start()
        second.wait_until_blocked_or_finished()

    _inside_consumer[key] = let_the_second_arrive
    first = Racer("the first delivery", deliver).start()
    results = finish(first, second)

    assert sorted(results) == ["already handled", "handled"]
    assert _calls[f"pausing:{key}"] == [str(event.pk)]


def test_two_relays_at_the_same_moment_publish_once(tenant, monkeypatch):
    monkeypatch.setattr(outbox, "_request_relay", lambda *args: None)
    event = _announce(tenant, uuid.uuid4().hex)
    sent = []
    monkeypatch.setattr(tasks.handle, "apply_async", lambda *args, **kwargs: sent.append(args))

    def relay():
        with tenant_context(tenant):
            return outbox.dispatch([event.pk])

    second = Racer("the second relay", relay)

    def let_the_second_look(*args, **kwargs):
        """The first relay holds the event's row lock here: the second one looks now, until it waits on that
        lock (or ends)."""
        second.start()
        second.wait_until_blocked_or_finished()

    run_before(monkeypatch, tasks.handle, "apply_async", let_the_second_look)
    first = Racer("the first relay", relay).start()
    counts = finish(first, second)

    assert sorted(counts) == [0, 1]
    assert len(sent) == 2  # two consumers of tests.happened, queued once each


def test_events_of_one_transaction_are_relayed_by_one_task_and_a_rollback_starts_afresh(tenant, monkeypatch):
    requested = []
    monkeypatch.setattr(outbox, "_request_relay", lambda tenant_id, ids: requested.append(list(ids)))
    with tenant_context(tenant):  # one transaction
        first, second = _announce(tenant, "one"), _announce(tenant, "two")
    with contextlib.suppress(RuntimeError), tenant_context(tenant):
        _announce(tenant, "rolled back")
        raise RuntimeError
    with tenant_context(tenant):
        third = _announce(tenant, "three")
    assert requested == [[first.pk, second.pk], [third.pk]]


def test_an_event_a_consumer_publishes_is_dispatched_by_the_worker_without_a_relay_task(
    worker, tenant, monkeypatch
):
    from events import tasks as event_tasks

    relayed = []
    real_relay = event_tasks.relay.apply_async
    monkeypatch.setattr(
        event_tasks.relay,
        "apply_async",
        lambda args, **options: relayed.append(args) or real_relay(args, **options),
    )
    key = uuid.uuid4().hex
    with tenant_context(tenant):
        outbox.publish("tests.chained", Membership.objects.first(), {"key": key})

    _wait_for(lambda: _calls.get(f"{key}:next"), "the chained event's consumer")
    assert (
        len(relayed) == 1
    )  # the first event's relay (published by this test, not in a worker); not the second
