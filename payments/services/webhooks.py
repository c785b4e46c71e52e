"""Gateway webhooks: verified, stored once, then acted on by re-fetching what they are about.

The event is only a trigger. Whatever order events arrive in, and however often, the payment or refund is fetched
from the gateway and recorded as it is there, so duplicates, replays and out-of-order deliveries all converge.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping

from django.db import IntegrityError, transaction
from django.utils import timezone

from payments.gateways import tenant_accounts
from payments.gateways.base import (
    GatewayCredentialsRefused,
    GatewayError,
    GatewayEvent,
    GatewayUnavailable,
)
from payments.models import Payment, Refund, WebhookEvent
from payments.services import online, refunds
from tenants import tasking
from tenants.context import require_tenant_id, tenant_context

logger = logging.getLogger(__name__)

ACTED_ON = ("payment", "refund")


def receive(provider: str, body: bytes, headers: Mapping[str, str]) -> str:
    """Verify and store a delivery; returns ``"accepted"``, ``"duplicate"`` or ``"ignored"``. Raises
    ``GatewayNotConfigured`` (no such gateway here) or ``InvalidWebhook`` (bad signature, stale, garbage)."""
    with tenant_context(require_tenant_id()):
        gateway = tenant_accounts.gateway_for(provider)
    event = gateway.parse_webhook(body, headers)  # PayPal verifies over the network: outside any transaction
    return _store(provider, event)


def _store(provider: str, event: GatewayEvent) -> str:
    tenant_id = require_tenant_id()
    with tenant_context(tenant_id):
        acted_on = event.object_kind in ACTED_ON and bool(event.object_reference)
        stored = WebhookEvent(
            provider=provider,
            event_id=event.id[:255],
            event_type=event.type[:100],
            object_kind=event.object_kind[:12],
            object_reference=event.object_reference[:255],
        )
        if not acted_on:
            stored.processed_at, stored.outcome = timezone.now(), "ignored: not a payment or refund event"
        try:
            with transaction.atomic():
                stored.save()
        except IntegrityError:
            return "duplicate"
        if acted_on:
            transaction.on_commit(lambda: _process_later(str(tenant_id), str(stored.pk)))
    return "accepted" if acted_on else "ignored"


def _process_later(tenant_id: str, event_id: str) -> None:
    tasking.enqueue("payments.process_webhook_event", tenant_id, event_id, tenant_id=tenant_id)


def _refund_made_elsewhere(event: WebhookEvent) -> str:
    """A refund we have no row for: ours still waiting for its answer, or one made in the gateway's dashboard
    (or a reversal). Either way, what counts is the refund as the gateway has it, and our payment it belongs to."""
    with tenant_context(require_tenant_id()):
        gateway = tenant_accounts.gateway_for(event.provider)
    found = gateway.fetch_refund(event.object_reference)
    with tenant_context(require_tenant_id()):
        ours = Payment.objects.filter(provider=event.provider)
        payment = (
            ours.filter(provider_reference=found.payment_reference).first()
            if found.payment_reference
            else None
        )
        if payment is None and found.capture_reference:
            payment = ours.filter(capture_reference=found.capture_reference).first()
    if payment is None:
        return f"no payment of refund {event.object_reference} recorded here"
    if payment.status != Payment.Status.SUCCEEDED:
        payment = online.sync_payment(payment)  # money went back from it: it was taken; record that first
    refund = refunds.record_gateway_refund(payment, found, reversal=event.event_type in REVERSALS)
    if refund is None:
        return f"refund {event.object_reference} not recorded: check it at the gateway"
    return f"refund {refund.status} ({refund.get_kind_display().lower()})"


# Events about money the gateway took back itself (not a refund anyone made).
REVERSALS = ("PAYMENT.CAPTURE.REVERSED",)
# Events left unprocessed (a task lost, retries exhausted, credentials refused) are processed again by
# reconciliation after this long, for as long as the gateways keep retrying deliveries themselves.
SWEEP_AFTER = dt.timedelta(minutes=10)
SWEEP_WITHIN = dt.timedelta(days=3)


def process(webhook_event_id: uuid.UUID | str) -> str:
    """Bring what the event is about to the gateway's truth (a task; outside any transaction; repeatable).

    An outage (or a refund of ours still unanswered) raises ``GatewayUnavailable`` for the task to retry; our
    credentials refused raise too, left for the sweep. Anything else the gateway refuses is recorded as the
    event's outcome and logged: retrying would not change the answer."""
    with tenant_context(require_tenant_id()):
        event = WebhookEvent.objects.get(pk=webhook_event_id)
        if event.processed_at is not None:
            return event.outcome
    try:
        outcome = _act_on(event)
    except (GatewayUnavailable, GatewayCredentialsRefused):
        raise  # retried: by the task, then by the sweep (once staff have fixed the account)
    except GatewayError as error:
        logger.error(
            "%s webhook %s (%s %s) refused by the gateway: %s",
            event.provider,
            event.event_id,
            event.object_kind,
            event.object_reference,
            error.message,
        )
        outcome = f"{event.object_kind} {event.object_reference} refused by the gateway: {error.code}"
    with tenant_context(require_tenant_id()):
        WebhookEvent.objects.filter(pk=webhook_event_id).update(
            processed_at=timezone.now(), outcome=outcome[:200]
        )
    return outcome


def _act_on(event: WebhookEvent) -> str:
    target: Refund | Payment | None
    with tenant_context(require_tenant_id()):
        if event.object_kind == "refund":
            target = (
                Refund.objects.select_related("payment")
                .filter(payment__provider=event.provider, provider_reference=event.object_reference)
                .first()
            )
        else:
            target = Payment.objects.filter(
                provider=event.provider, provider_reference=event.object_reference
            ).first()
    if target is None and event.object_kind == "refund":
        return _refund_made_elsewhere(event)
    if target is None:
        # Not ours: made in the gateway's dashboard or by another system on the same account.
        return f"no {event.object_kind} {event.object_reference} recorded here"
    if isinstance(target, Refund):
        return f"refund {refunds.sync_refund(target).status}"
    return f"payment {online.sync_payment(target).status}"


def unprocessed(limit: int) -> list[WebhookEvent]:
    """Events acted on by nobody yet, old enough that their task is not coming (reconciliation's sweep)."""
    now = timezone.now()
    return list(
        WebhookEvent.objects.filter(
            processed_at__isnull=True,
            received_at__lte=now - SWEEP_AFTER,
            received_at__gte=now - SWEEP_WITHIN,
        ).order_by("received_at")[:limit]
    )
