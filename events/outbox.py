"""Writing and relaying events.

``publish(name, aggregate, payload)`` inserts the event in the current transaction (the one that made the change)
and, once that commits, asks a worker to relay it. ``dispatch`` is the relay: it locks the still-unpublished rows
(SKIP LOCKED, so two relays never take the same row), queues one task per consumer and marks them published in the
same transaction. A crash between the commit and the relay request leaves the row unpublished: the beat sweep
dispatches it later. Delivery is therefore at least once; consumers make it exactly-once in effect.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable

from celery import current_task
from django.db import models, transaction
from django.utils import timezone

from core.locking import UPDATE, lock_rows
from events.models import DeadLetter, OutboxEvent
from events.registry import consumers_of
from tenants import tasking
from tenants.context import require_tenant_id, tenant_context

logger = logging.getLogger(__name__)


def publish(name: str, aggregate: models.Model, payload: dict | None = None) -> OutboxEvent:
    tenant_id = require_tenant_id()
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("publish() belongs in the transaction of the change it announces")
    event = OutboxEvent.objects.create(
        name=name,
        aggregate_type=aggregate._meta.label_lower,
        aggregate_id=str(aggregate.pk),
        payload=payload or {},
    )
    _relay_batch(tenant_id).event_ids.append(event.pk)
    return event


class _RelayBatch:
    """The events one transaction published, relayed by one task after it commits (a booking publishes three
    events at once: one relay task, not three)."""

    def __init__(self, tenant_id: uuid.UUID):
        self.tenant_id = tenant_id
        self.event_ids: list[uuid.UUID] = []

    def __call__(self) -> None:
        _request_relay(self.tenant_id, self.event_ids)


def _relay_batch(tenant_id: uuid.UUID) -> _RelayBatch:
    """This transaction's pending batch, or a new one registered to run on commit. A batch dropped by a rollback
    is no longer pending, so the next event starts a new one. (An event added to a batch that an enclosing
    savepoint's rollback drops waits for the sweep: delivery stays at least once.)"""
    connection = transaction.get_connection()
    for _savepoints, callback, _robust in connection.run_on_commit:
        if isinstance(callback, _RelayBatch) and callback.tenant_id == tenant_id:
            return callback
    batch = _RelayBatch(tenant_id)
    transaction.on_commit(batch)
    return batch


def _request_relay(tenant_id: uuid.UUID, event_ids: list[uuid.UUID]) -> None:
    if _in_a_worker_task():
        # An event published by a consumer (e.g. invoice.issued) is dispatched right here, after the consumer's
        # commit, instead of through a relay task at the back of the queue.
        try:
            with tenant_context(tenant_id):
                dispatch(event_ids)
            return
        except Exception:  # noqa: BLE001 - fall back to the relay task (and the sweep behind it)
            logger.warning("could not dispatch %s in the worker; asking the relay", event_ids, exc_info=True)
    try:
        tasking.enqueue("events.relay", [str(pk) for pk in event_ids], tenant_id=tenant_id)
    except Exception:  # noqa: BLE001 - the broker is down: the sweep publishes the event later
        logger.warning("could not request the relay of %s; the sweep will", event_ids)


def _in_a_worker_task() -> bool:
    request = getattr(current_task, "request", None)
    return bool(request is not None and request.id and not request.called_directly and not request.is_eager)


def dispatch(
    event_ids: Iterable[uuid.UUID | str] | None = None, *, older_than: dt.timedelta | None = None, limit=500
):
    """Queue the consumers of unpublished events (the given ones, or the oldest pending ones) and mark them
    published. Runs in the current tenant's transaction; returns how many events it published."""
    tenant_id = require_tenant_id()
    pending = OutboxEvent.objects.filter(published_at=None)
    if event_ids is not None:
        pending = pending.filter(pk__in=list(event_ids))
    if older_than is not None:
        pending = pending.filter(created_at__lte=timezone.now() - older_than)
    events = lock_rows(pending.order_by("created_at")[:limit], skip_locked=True, strength=UPDATE)
    for event in events:
        for consumer_name in consumers_of(event.name):
            tasking.enqueue("events.handle", str(event.pk), consumer_name, tenant_id=tenant_id)
    if events:
        OutboxEvent.objects.filter(pk__in=[event.pk for event in events]).update(published_at=timezone.now())
    return len(events)


def requeue_dead_letters(letters: models.QuerySet[DeadLetter]) -> int:
    """Run the consumers of these dead letters again (still at most once per event, once this transaction
    commits) and mark the letters resolved; a run that fails again leaves a new letter. Returns how many."""
    tenant_id = require_tenant_id()
    unresolved = list(letters.filter(resolved_at=None))

    def requeue() -> None:
        for letter in unresolved:
            tasking.enqueue("events.handle", str(letter.event_id), letter.consumer, tenant_id=tenant_id)

    transaction.on_commit(requeue)
    DeadLetter.objects.filter(pk__in=[letter.pk for letter in unresolved]).update(resolved_at=timezone.now())
    return len(unresolved)
