"""Celery side of the outbox: relay, sweep, and the consumer runner (retries with backoff, then a dead letter)."""

from __future__ import annotations

import datetime as dt
import logging
from functools import partial

from celery import shared_task
from django.db import connection, transaction

from events.models import DeadLetter, OutboxEvent, ProcessedEvent
from events.outbox import dispatch
from events.registry import HANDLERS
from tenants.context import require_tenant_id
from tenants.jobs import drain, for_each_active_tenant

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
SWEEP_AFTER = dt.timedelta(seconds=30)  # leave the on-commit relay time to do its job first


def retry_delay(attempt: int) -> int:
    """Seconds before retry ``attempt`` (1-based): 10 s, 30 s, 90 s, 4.5 min, 13.5 min."""
    return 10 * 3 ** (attempt - 1)


@shared_task(name="events.relay")
def relay(event_ids: list[str]) -> int:
    return dispatch(event_ids)  # runs in the tenant of the header (TenantTask)


@shared_task(name="events.sweep_outbox")
def sweep_outbox() -> int:
    # Each tenant's backlog (e.g. after a broker outage) is drained in batches of 500.
    published = for_each_active_tenant(
        lambda tenant: drain(tenant, partial(dispatch, older_than=SWEEP_AFTER), size=500),
        what="the outbox sweep",
    )
    if published:
        logger.warning("the outbox sweep published %d events the relay had not", published)
    return published


def _claim(event_id: str, consumer_name: str) -> bool:
    """Record that this consumer handles this event; False if it already did. A concurrent claim waits for the
    other transaction and then finds the row."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO events_processedevent (tenant_id, event_id, consumer, processed_at)
            SELECT tenant_id, id, %s, now() FROM events_outboxevent WHERE id = %s
            ON CONFLICT ON CONSTRAINT processedevent_once_per_consumer DO NOTHING
            RETURNING 1
            """,
            [consumer_name, event_id],
        )
        return cursor.fetchone() is not None


class EventNotVisible(LookupError):
    """The event is not in this task's tenant (a missing or wrong tenant header): never "already handled"."""


@shared_task(
    bind=True,
    name="events.handle",
    max_retries=MAX_ATTEMPTS - 1,
    acks_late=True,
    soft_time_limit=120,
    time_limit=150,
)
def handle(self, event_id: str, consumer_name: str) -> str:
    """Run one consumer for one event, once: the claim and the consumer's writes commit together or not at all."""
    require_tenant_id()  # the header names the tenant; without it RLS would hide the event
    try:
        with transaction.atomic():
            handler = HANDLERS[consumer_name]
            if not _claim(event_id, consumer_name):
                if not ProcessedEvent.objects.filter(event_id=event_id, consumer=consumer_name).exists():
                    raise EventNotVisible(f"event {event_id} is not visible in this tenant")
                return "already handled"
            handler(OutboxEvent.objects.get(pk=event_id))
            # Foreign keys are checked at COMMIT, which happens after this function returns (the task's tenant
            # transaction): check them now, so a violation takes the retry / dead-letter path, not a lost event.
            connection.check_constraints()
        return "handled"
    except EventNotVisible:
        raise
    except Exception as error:
        attempt = self.request.retries + 1
        if isinstance(error, KeyError) and consumer_name not in HANDLERS:
            attempt = MAX_ATTEMPTS  # a consumer that no longer exists: retrying cannot help
        if attempt >= MAX_ATTEMPTS:
            DeadLetter.objects.create(
                event_id=event_id,
                consumer=consumer_name,
                error=f"{type(error).__name__}: {error}",
                attempts=attempt,
            )
            logger.error("consumer %s gave up on event %s: %s", consumer_name, event_id, error)
            return "dead letter"
        raise self.retry(exc=error, countdown=retry_delay(attempt)) from error
