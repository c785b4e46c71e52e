"""Bring payments and refunds left unsettled (a crash between "attempt recorded" and "gateway answered", a lost
webhook) to the gateway's truth, and process webhook events nobody acted on (a lost task, retries exhausted).
Runs from beat for every tenant; each item is fetched and recorded on its own, so one gateway error skips one
item."""

from __future__ import annotations

import datetime as dt
import logging

from django.utils import timezone

from payments.gateways.base import (
    CANCELLED,
    FAILED,
    GatewayCredentialsRefused,
    GatewayError,
    GatewayPayment,
)
from payments.models import Payment, PaymentSchedule
from payments.services import installments, online, refunds, webhooks
from tenants.context import require_tenant_id, tenant_context

logger = logging.getLogger(__name__)

# Long enough for a payer still on the page (3-D Secure, PayPal approval) not to be disturbed by us.
SETTLE_AFTER = dt.timedelta(minutes=15)
# An attempt never sent to the gateway, or never completed by the payer, is given up after this.
ABANDON_AFTER = dt.timedelta(hours=24)
BATCH = 100


def reconcile_unsettled(now: dt.datetime | None = None) -> int:
    """Payments still created/pending and gateway refunds still pending after ``SETTLE_AFTER``; returns how many
    were looked at."""
    now = now or timezone.now()
    with tenant_context(require_tenant_id()):
        payments = online.unsettled(SETTLE_AFTER, BATCH)
        pending_refunds = refunds.pending_gateway_refunds(SETTLE_AFTER, BATCH)
        events = webhooks.unprocessed(BATCH)
    for payment in payments:
        try:
            _settle_payment(payment, now)
        except GatewayError as error:
            logger.warning("reconciliation: payment %s not settled (%s)", payment.pk, error.message)
    for refund in pending_refunds:
        try:
            refunds.sync_refund(refund)
        except GatewayError as error:
            logger.warning("reconciliation: refund %s not settled (%s)", refund.pk, error.message)
    refused: set[str] = set()
    for event in events:
        if event.provider in refused:
            continue  # its account's credentials were refused just now: no point asking again this run
        try:
            webhooks.process(event.pk)
        except GatewayCredentialsRefused as error:
            refused.add(event.provider)
            logger.error("reconciliation: %s credentials refused (%s)", event.provider, error.message)
        except Exception:  # one bad event (e.g. its gateway account removed) must not hold up the others
            logger.exception("reconciliation: webhook event %s not processed", event.event_id)
    return len(payments) + len(pending_refunds) + len(events)


def _settle_payment(payment: Payment, now: dt.datetime) -> None:
    if payment.off_session and not payment.provider_reference:
        _settle_off_session(payment, now)
        return
    if not payment.provider_reference:
        # The gateway never answered the create call. Its client secret / approval link never left our server, so
        # nobody can pay it: once it is old enough, the attempt is over.
        if now - payment.created_at >= online.REUSE_OPEN_ATTEMPT_FOR:
            online.apply_gateway_state(
                payment.pk,
                GatewayPayment(
                    reference="",
                    status=CANCELLED,
                    amount=0,
                    currency="",
                    failure_code="abandoned",
                    failure_reason="The gateway never answered; the attempt was abandoned.",
                ),
            )
        return
    payment = online.sync_payment(payment)
    if not payment.is_settled and now - payment.created_at >= ABANDON_AFTER:
        online.cancel_attempt(payment)  # the payer left the page a day ago


# Stripe keeps an idempotency key for 24 hours: within that, sending an attempt again replays its first outcome.
RESEND_WITHIN = dt.timedelta(hours=23)


def _settle_off_session(payment: Payment, now: dt.datetime) -> None:
    """An installment charge whose answer we never recorded. Unlike a checkout attempt, Stripe may well have
    charged it (it is confirmed server-side): send it again with its key to learn the outcome. Past the key's
    lifetime a resend could charge anew, so staff check it at the gateway instead."""
    if now - payment.created_at < RESEND_WITHIN:
        installments.send_attempt(payment)
        return
    logger.error("installment charge %s unanswered for a day: check it at Stripe", payment.pk)
    with tenant_context(require_tenant_id()):
        PaymentSchedule.objects.filter(booking_id=payment.booking_id).update(needs_attention=True)
    online.apply_gateway_state(
        payment.pk,
        GatewayPayment(
            reference="",
            status=FAILED,
            amount=0,
            currency="",
            failure_code=installments.UNKNOWN_OUTCOME,  # never dunned: it may have been charged
            failure_reason="No answer was recorded; check this charge in the Stripe dashboard.",
        ),
    )
