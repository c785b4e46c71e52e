"""Refunds: decided in the database, carried out at the gateway afterwards.

A refund request (staff, the cancellation policy, or money that arrived for nothing) is decided under the
booking's row lock, then each payment's row lock: it is split across the booking's succeeded payments (card and
PayPal first, newest first, then offline), each part a ``Refund`` row that reserves its amount in
``Payment.refunded`` — a CHECK constraint keeps that within the payment, so concurrent requests can never refund
more than was captured together. After commit a task sends each gateway part (idempotency key = the request's key
+ the payment: a retried request or task never refunds twice) and records the answer; an offline part stays
pending until staff record the money sent back. ``Booking.paid`` drops only when a refund succeeds, which
publishes ``payment.refunded``; a cancelled booking whose money has all gone back becomes ``refunded``.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, cast

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.http import HttpRequest
from django.utils import timezone

from bookings import services as booking_services
from bookings.locks import lock_booking, lock_bookings
from bookings.models import Booking
from core.errors import ConflictError, DomainError
from core.locking import lock_row, lock_rows
from core.money import format_money
from events.outbox import publish
from payments.gateways import tenant_accounts
from payments.gateways.base import (
    REFUND_FAILED,
    REFUND_SUCCEEDED,
    GatewayError,
    GatewayRefund,
    GatewayUnavailable,
)
from payments.models import Payment, PaymentSchedule, Refund
from payments.services.paid import adjust_paid
from tenants import audit, tasking
from tenants.context import require_tenant_id, tenant_context

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

RefundStatus = Refund.Status
MAX_REQUEST_KEY = 100


Kind = Refund.Kind


def refundable(booking: Booking) -> int:
    """What can still be refunded: succeeded payments less what refunds (pending or done) already take."""
    totals = Payment.objects.filter(booking=booking, status=Payment.Status.SUCCEEDED).aggregate(
        amount=Sum("amount"), refunded=Sum("refunded")
    )
    return (totals["amount"] or 0) - (totals["refunded"] or 0)


def pending_total(booking: Booking) -> int:
    """Refunds decided but not yet done (their money is still in ``Booking.paid``)."""
    return (
        Refund.objects.filter(booking=booking, status=RefundStatus.PENDING).aggregate(total=Sum("amount"))[
            "total"
        ]
        or 0
    )


def _replayed(request_key: str, amount: int, booking: Booking) -> list[Refund] | None:
    earlier = list(Refund.objects.filter(request_key=request_key).order_by("created_at", "id"))
    if not earlier:
        return None
    if earlier[0].booking_id != booking.pk or sum(refund.amount for refund in earlier) != amount:
        raise ConflictError(
            "This idempotency key was already used for a different refund.",
            code="idempotency_key_reused",
            fields={"idempotency_key": ["Already used for a different refund."]},
        )
    return earlier


@transaction.atomic
def request_refund(
    booking: Booking,
    *,
    amount: int,
    reason: str,
    request_key: str,
    actor: User | None,
    kind: str = Kind.GOODWILL,
    request: HttpRequest | None = None,
) -> list[Refund]:
    """Staff refund ``amount`` (int minor units of the booking's currency) with a reason. The same
    ``request_key`` returns the refunds it already made (a retried form or API call refunds once)."""
    reason, request_key = (reason or "").strip(), (request_key or "").strip()
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise DomainError(
            f"The amount is a whole number of minor units of {booking.currency} (e.g. 1250 for 12.50).",
            code="invalid",
            fields={"amount": ["A whole number of minor units."]},
        )
    if amount <= 0:
        raise DomainError("Refund more than zero.", code="invalid", fields={"amount": ["Above 0."]})
    if not reason:
        raise DomainError("Say why the money goes back.", code="invalid", fields={"reason": ["Required."]})
    if not request_key or len(request_key) > MAX_REQUEST_KEY:
        raise DomainError(
            f"A refund needs an idempotency key of 1 to {MAX_REQUEST_KEY} characters.",
            code="invalid",
            fields={"idempotency_key": ["Required, at most 100 characters."]},
        )
    replayed = _replayed(request_key, amount, booking)
    if replayed is not None:
        return replayed
    booking = lock_booking(booking)
    replayed = _replayed(request_key, amount, booking)  # committed while we waited for the lock
    if replayed is not None:
        return replayed
    refunds = request_refund_locked(
        booking, amount=amount, reason=reason, request_key=request_key, actor=actor, kind=kind
    )
    audit.record(
        audit.Action.CREATE,
        actor=actor,
        target=booking,
        request=request,
        changes={"refund": [None, amount], "currency": [None, booking.currency], "reason": [None, reason]},
    )
    return refunds


def _payments_to_refund(booking: Booking, only: list[Payment] | None) -> list[Payment]:
    queryset = Payment.objects.filter(booking=booking, status=Payment.Status.SUCCEEDED)
    if only is not None:
        queryset = queryset.filter(pk__in=[payment.pk for payment in only])
    locked = lock_rows(queryset)
    # Gateway payments go back by themselves: refund them first, newest first; offline ones need staff. (A
    # succeeded payment has its succeeded_at: CHECK payment_succeeded_has_time.)
    locked.sort(key=lambda payment: cast(dt.datetime, payment.succeeded_at), reverse=True)
    return sorted(locked, key=lambda payment: payment.provider == Payment.Provider.OFFLINE)


def request_refund_locked(
    booking: Booking,
    *,
    amount: int,
    reason: str,
    request_key: str,
    actor: User | None,
    kind: str = Kind.GOODWILL,
    payments: list[Payment] | None = None,
) -> list[Refund]:
    """Split and reserve a refund (the caller holds the booking's row lock, inside its transaction); the gateway
    parts are sent after commit. Refuses more than what is left to refund."""
    candidates = _payments_to_refund(booking, payments)
    available = sum(payment.amount - payment.refunded for payment in candidates)
    if amount > available:
        message = (
            f"{format_money(amount, booking.currency)} is more than can be refunded on booking {booking.reference} "
            f"({format_money(available, booking.currency)}: what was paid, less refunds already made or under way)."
        )
        raise DomainError(message, code="over_refund", fields={"amount": [message]})
    refunds, remaining = [], amount
    for payment in candidates:
        part = min(remaining, payment.amount - payment.refunded)
        if part <= 0:
            continue
        payment.refunded += part
        payment.save(update_fields=["refunded", "updated_at"])
        refunds.append(
            Refund.objects.create(
                payment=payment,
                booking=booking,
                amount=part,
                currency=payment.currency,
                request_key=request_key,
                idempotency_key=f"{request_key}:{payment.pk}",
                kind=kind,
                reason=reason,
                requested_by=actor if getattr(actor, "pk", None) else None,
            )
        )
        remaining -= part
        if remaining == 0:
            break
    gateway_parts = [refund.pk for refund in refunds if refund.payment.provider != Payment.Provider.OFFLINE]
    if gateway_parts:
        tenant_id = str(require_tenant_id())
        transaction.on_commit(lambda: _send_later(tenant_id, gateway_parts))
    return refunds


def _send_later(tenant_id: str, refund_ids: list[uuid.UUID]) -> None:
    for refund_id in refund_ids:
        tasking.enqueue("payments.send_refund", tenant_id, str(refund_id), tenant_id=tenant_id)


def send_refund(refund_id: uuid.UUID | str) -> Refund:
    """Carry out one pending gateway refund (a task, outside any transaction; safe to repeat). An outage raises
    ``GatewayUnavailable`` for the task to retry; a refusal fails the refund and frees its reservation."""
    with tenant_context(require_tenant_id()):
        refund = Refund.objects.select_related("payment").get(pk=refund_id)
        if refund.status != RefundStatus.PENDING or refund.payment.provider == Payment.Provider.OFFLINE:
            return refund  # decided (a late gateway answer still comes through sync_refund and webhooks)
        payment = refund.payment
        gateway = tenant_accounts.gateway_for(payment.provider)
    try:
        result = gateway.refund(
            payment_reference=payment.provider_reference,
            capture_reference=payment.capture_reference,
            amount=refund.amount,
            currency=refund.currency,
            idempotency_key=refund.idempotency_key,
            reason=refund.reason,
            client_reference=str(refund.pk),
        )
    except GatewayUnavailable:
        raise
    except GatewayError as error:
        result = GatewayRefund(
            reference="",
            status=REFUND_FAILED,
            amount=refund.amount,
            currency=refund.currency,
            failure_reason=error.message,
        )
    return record_refund_outcome(refund.pk, result)


def sync_refund(refund: Refund) -> Refund:
    """Fetch a refund the gateway has from it and record it (webhooks, reconciliation)."""
    if not refund.provider_reference:
        return send_refund(refund.pk)  # never answered: sending again with its key is safe
    with tenant_context(require_tenant_id()):
        gateway = tenant_accounts.gateway_for(refund.payment.provider)
    return record_refund_outcome(refund.pk, gateway.fetch_refund(refund.provider_reference))


def record_refund_outcome(
    refund_id: uuid.UUID, result: GatewayRefund, *, actor: User | None = None
) -> Refund:
    """Bring a refund to the gateway's answer, whatever order answers, webhooks and reconciliation arrive in:
    pending → succeeded / failed, and also failed → succeeded (a refusal we recorded wrongly) and succeeded →
    failed (the card was closed: the money came back to the account, staff must return it another way)."""
    with tenant_context(require_tenant_id()):
        booking_id = Refund.objects.values_list("booking_id", flat=True).get(pk=refund_id)
        booking = lock_booking(booking_id)
        refund = Refund.objects.select_related("payment").get(pk=refund_id)
        payment = lock_row(Payment, pk=refund.payment_id)
        if result.reference and not refund.provider_reference:
            refund.provider_reference = result.reference
        if result.status == REFUND_SUCCEEDED and refund.status != RefundStatus.SUCCEEDED:
            if refund.status == RefundStatus.FAILED:  # its reservation was freed: take it again
                payment.refunded += refund.amount
                payment.save(update_fields=["refunded", "updated_at"])
            _succeeded(booking, payment, refund, actor)
        elif result.status == REFUND_FAILED and refund.status != RefundStatus.FAILED:
            if refund.status == RefundStatus.SUCCEEDED:
                adjust_paid(booking, refund.amount)
                logger.error(
                    "refund %s of booking %s failed after succeeding (%s): the money is back with us",
                    refund.pk,
                    booking.reference,
                    result.failure_reason,
                )
            refund.status, refund.failure_reason = (
                RefundStatus.FAILED,
                (result.failure_reason or "refused")[:500],
            )
            refund.save()
            payment.refunded -= refund.amount
            payment.save(update_fields=["refunded", "updated_at"])
        else:
            refund.save(update_fields=["provider_reference", "updated_at"])
        return refund


def _succeeded(booking: Booking, payment: Payment, refund: Refund, actor: User | None) -> None:
    refund.status, refund.succeeded_at, refund.failure_reason = RefundStatus.SUCCEEDED, timezone.now(), ""
    refund.save()
    adjust_paid(booking, -refund.amount)
    publish(
        "payment.refunded",
        booking,
        {
            "reference": booking.reference,
            "refund": str(refund.pk),
            "payment": str(payment.pk),
            "amount": refund.amount,
            "currency": refund.currency,
            "kind": refund.kind,
            "request": refund.request_key,
        },
    )
    if actor is not None:
        audit.record(
            audit.Action.CHANGE, actor=actor, target=refund, changes={"status": ["pending", "succeeded"]}
        )
    _refunded_in_full(booking)


def _refunded_in_full(booking: Booking) -> None:
    nothing_pending = not Refund.objects.filter(booking=booking, status=RefundStatus.PENDING).exists()
    if booking.status == Booking.Status.CANCELLED and booking.paid <= 0 and nothing_pending:
        booking_services.mark_refunded(booking)


class OursStillUnanswered(GatewayUnavailable):
    """A refund we cannot tell apart yet: one of ours on the same payment still waits for its gateway answer.
    Retried later (the answer, or reconciliation, gives ours its reference first)."""


def record_gateway_refund(
    payment: Payment, result: GatewayRefund, *, reversal: bool = False
) -> Refund | None:
    """A refund the gateway reports for one of our succeeded payments (fetched from it, never taken from an
    event).

    Ours (it carries our refund's id) is brought to the answer. One made at the gateway itself — in its
    dashboard, or by another tool on the account — is recorded too, so that what the booking has paid agrees with
    the money that actually went back: as kind "gateway" (staff gave it: not asked for again), or, for money the
    gateway took back itself (``reversal``: a dispute), as kind "reversal" (still owed; staff are flagged).
    Returns None when it cannot be counted (another currency, more than is left of the payment, or a refund that
    failed): that is logged for staff, never guessed."""
    ours = _our_refund(payment, result)
    if ours is NAMES_ANOTHER:
        return None
    if ours is not None:
        return record_refund_outcome(ours.pk, result)
    with tenant_context(require_tenant_id()):
        booking = lock_booking(payment.booking_id)
        payment = lock_row(Payment, pk=payment.pk)
        known = Refund.objects.filter(payment=payment, provider_reference=result.reference).first()
        if known is None:
            waiting = Refund.objects.filter(
                payment=payment, status=RefundStatus.PENDING, provider_reference=""
            )
            if result.status != REFUND_FAILED and waiting.exists():
                raise OursStillUnanswered(
                    f"Refund {result.reference} on payment {payment.pk}: one of ours there is still unanswered.",
                    code="refund_unanswered",
                )
            known = _adopt(booking, payment, result, Kind.REVERSAL if reversal else Kind.GATEWAY)
            if known is None:
                return None
    return record_refund_outcome(known.pk, result)


class _Sentinel(enum.Enum):
    NAMES_ANOTHER = "names another"


# The refund names one of ours that is another refund at the gateway (an enum member: a sentinel the type
# checker tells apart with ``is``).
NAMES_ANOTHER: Final = _Sentinel.NAMES_ANOTHER


def _our_refund(payment: Payment, result: GatewayRefund) -> Refund | _Sentinel | None:
    """Our refund this gateway refund is (by its reference, or the id it carries), None if none of ours, or
    ``NAMES_ANOTHER``."""
    with tenant_context(require_tenant_id()):
        by_reference = Refund.objects.filter(payment=payment, provider_reference=result.reference).first()
        if by_reference is not None or not result.client_reference:
            return by_reference
        try:
            named = Refund.objects.filter(payment=payment, pk=result.client_reference).first()
        except (ValueError, ValidationError):
            return None
    if named is not None and named.provider_reference not in ("", result.reference):
        # A second refund at the gateway carrying our id (a re-send after its key expired): never take it for ours.
        logger.error(
            "refund %s names our refund %s, which is %s at the gateway: check the payment there",
            result.reference,
            named.pk,
            named.provider_reference,
        )
        with tenant_context(require_tenant_id()):
            PaymentSchedule.objects.filter(booking_id=payment.booking_id).update(needs_attention=True)
        return NAMES_ANOTHER
    return named


def _adopt(booking: Booking, payment: Payment, result: GatewayRefund, kind: str) -> Refund | None:
    left = payment.amount - payment.refunded
    fits = result.currency == payment.currency and 0 < result.amount <= left
    if payment.status != Payment.Status.SUCCEEDED or result.status == REFUND_FAILED or not fits:
        if result.status != REFUND_FAILED:
            logger.error(
                "%s refund %s of %s %s on payment %s (%s, booking %s) not recorded: %s %s of it is left to "
                "refund; check it at the gateway",
                payment.provider,
                result.reference,
                result.amount,
                result.currency,
                payment.pk,
                payment.status,
                booking.reference,
                left,
                payment.currency,
            )
        return None
    key = f"gateway:{payment.provider}:{result.reference}"[:MAX_REQUEST_KEY]
    payment.refunded += result.amount
    payment.save(update_fields=["refunded", "updated_at"])
    if kind == Kind.REVERSAL:
        PaymentSchedule.objects.filter(booking=booking).update(needs_attention=True)
        reason = f"Taken back by {payment.get_provider_display()} (a dispute or reversal): still owed."
    else:
        reason = f"Refunded in the {payment.get_provider_display()} dashboard (not through tourops)."
    return Refund.objects.create(
        payment=payment,
        booking=booking,
        amount=result.amount,
        currency=payment.currency,
        provider_reference=result.reference,
        request_key=key,
        idempotency_key=key,
        kind=kind,
        reason=reason,
    )


def complete_offline_refund(
    refund: Refund, *, reference: str, actor: User | None, request: HttpRequest | None = None
) -> Refund:
    """Staff sent the money of an offline payment back (a bank transfer, cash): record it with its reference."""
    reference = (reference or "").strip()
    if not reference:
        raise DomainError(
            "Enter the reference of the transfer (or receipt) that sent the money back.",
            code="invalid",
            fields={"reference": ["Required."]},
        )
    if refund.payment.provider != Payment.Provider.OFFLINE:
        raise ConflictError("Gateway refunds are completed by the gateway.", code="not_offline")
    result = GatewayRefund(
        reference=reference[:255], status=REFUND_SUCCEEDED, amount=refund.amount, currency=refund.currency
    )
    return record_refund_outcome(refund.pk, result, actor=actor)


def complete_offline_refunds(
    sent_back: Sequence[tuple[Refund, str]], *, actor: User | None, request: HttpRequest | None = None
) -> list[Refund | DomainError]:
    """Several offline refunds sent back at once (refund, reference each), recorded in one transaction: their
    bookings, then their payments, are locked up front in the global lock order, and each is recorded in its own
    savepoint, so one refused (its outcome is the error) does not undo the others."""
    refunds = [refund for refund, _reference in sent_back]
    lock_bookings(Booking.objects.filter(pk__in={refund.booking_id for refund in refunds}))
    lock_rows(Payment.objects.filter(pk__in={refund.payment_id for refund in refunds}))
    outcomes: list[Refund | DomainError] = []
    for refund, reference in sent_back:
        try:
            with transaction.atomic():
                outcomes.append(
                    complete_offline_refund(refund, reference=reference, actor=actor, request=request)
                )
        except DomainError as error:
            outcomes.append(error)
    return outcomes


def pending_gateway_refunds(older_than: dt.timedelta, limit: int) -> list[Refund]:
    return list(
        Refund.objects.filter(status=RefundStatus.PENDING, updated_at__lte=timezone.now() - older_than)
        .exclude(payment__provider=Payment.Provider.OFFLINE)
        .select_related("payment")
        .order_by("updated_at")[:limit]
    )
