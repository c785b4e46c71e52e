"""Payments through a gateway: checkout attempts, PayPal captures, off-session installment charges, and the one
function that brings a ``Payment`` row to what the gateway says (``apply_gateway_state``).

No row lock is ever held while a gateway answers. Each flow is: record the attempt and commit (short
transaction), call the gateway (no transaction), record the outcome (short transaction, booking row locked, then
the payment row). Callers run outside any transaction with the tenant current (``tenants.context.tenant_bound``:
views marked ``outside_request_transaction``, Celery tasks). A crash between the steps leaves a ``created`` or
``pending`` row that webhooks and ``reconcile_unsettled`` bring to the gateway's truth; every call that creates
something at the gateway carries an idempotency key derived from our ids, so repeating it never charges twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from bookings.locks import lock_booking
from bookings.models import Booking
from bookings.services import keep_seats_for_payment
from core.errors import ConflictError, DomainError
from core.locking import lock_row
from events.outbox import publish
from payments.gateways import tenant_accounts
from payments.gateways.base import (
    CANCELLED,
    FAILED,
    PENDING,
    SUCCEEDED,
    GatewayDeclined,
    GatewayError,
    GatewayPayment,
    GatewayRejected,
    GatewayUnavailable,
    PaymentGateway,
)
from payments.gateways.breaker import CircuitBreaker, guarded
from payments.models import Installment, Payment, PaymentSchedule
from payments.services import refunds, schedules
from payments.services.paid import adjust_paid
from tenants.context import require_tenant_id, tenant_context

logger = logging.getLogger(__name__)

Provider = Payment.Provider
PaymentStatus = Payment.Status
# A checkout attempt the payer may still complete is offered again (same amount) rather than a second one made.
REUSE_OPEN_ATTEMPT_FOR = dt.timedelta(hours=1)
METHOD_OF: dict[str, str] = {Provider.STRIPE: Payment.Method.CARD, Provider.PAYPAL: Payment.Method.PAYPAL}


def _step() -> AbstractContextManager[uuid.UUID]:
    """One short transaction in the current tenant."""
    return tenant_context(require_tenant_id())


def breaker(provider: str) -> CircuitBreaker:
    """Per tenant: each tenant has its own gateway account, so one account's trouble (rate limits, a revoked key)
    never closes checkout for the others."""
    return CircuitBreaker(f"gateway:{provider}:{require_tenant_id()}")


def _metadata(booking: Booking, payment: Payment) -> dict[str, str]:
    return {
        "tenant": str(booking.tenant_id),
        "booking": booking.reference,
        "payment": str(payment.pk),
    }


# --- recording what the gateway says ------------------------------------------------------------------------


def _lock(payment_id: uuid.UUID) -> tuple[Booking, Payment]:
    """Booking row, then payment row (the order every money change takes)."""
    booking_id = Payment.objects.values_list("booking_id", flat=True).get(pk=payment_id)
    booking = lock_booking(booking_id)
    return booking, lock_row(Payment, pk=payment_id)


def apply_gateway_state(payment_id: uuid.UUID, state: GatewayPayment) -> Payment:
    """Bring our row to the gateway's truth, whatever order the webhooks, redirects and reconciliation arrive in.

    A succeeded payment is final here (a refund is a ``Refund``); a failed or cancelled one may still turn
    succeeded (the payer retried the same PaymentIntent, a late capture): the money taken is what counts.
    Money received for a booking that is no longer sold, or beyond its total, is refunded at once."""
    with _step():
        booking, payment = _lock(payment_id)
        if state.reference and not payment.provider_reference:
            payment.provider_reference = state.reference
            payment.save(update_fields=["provider_reference", "updated_at"])
        if payment.status == PaymentStatus.SUCCEEDED:
            if state.capture_reference and not payment.capture_reference:
                payment.capture_reference = state.capture_reference
                payment.save(update_fields=["capture_reference", "updated_at"])
            return payment
        if state.status == SUCCEEDED:
            _record_success(booking, payment, state)
        elif state.status in (FAILED, CANCELLED):
            _record_failure(booking, payment, state)
        elif payment.status == PaymentStatus.CREATED and state.status == PENDING:
            payment.status = PaymentStatus.PENDING
            payment.save(update_fields=["status", "updated_at"])
        return payment


def _record_success(booking: Booking, payment: Payment, state: GatewayPayment) -> None:
    received = state.amount_received or state.amount
    if state.currency != payment.currency:
        # We created it in this currency: a gateway answering another one is a bug to see, not money to count.
        raise GatewayRejected(
            f"{payment.provider} reports payment {state.reference} in {state.currency}, recorded in "
            f"{payment.currency}; not counted.",
            code="currency_mismatch",
        )
    if received != payment.amount:
        logger.warning(
            "payment %s: the gateway took %s %s, the attempt was for %s",
            payment.pk,
            received,
            payment.currency,
            payment.amount,
        )
        payment.amount = received
    payment.status = PaymentStatus.SUCCEEDED
    payment.succeeded_at = timezone.now()
    payment.capture_reference = state.capture_reference or payment.capture_reference
    payment.payment_method_summary = state.payment_method_summary or payment.payment_method_summary
    payment.failure_code = payment.failure_reason = ""
    payment.save()
    adjust_paid(booking, payment.amount)
    if state.payment_method and state.customer:  # saved on the customer: usable for later installments
        PaymentSchedule.objects.filter(booking=booking).update(
            customer_reference=state.customer,
            payment_method_reference=state.payment_method,
            payment_method_summary=state.payment_method_summary,
            updated_at=timezone.now(),
        )
    if payment.installment_id:
        Installment.objects.filter(pk=payment.installment_id).update(
            dunning="", next_attempt_on=None, last_failure=""
        )
    publish(
        "payment.processed",
        booking,
        {
            "reference": booking.reference,
            "payment": str(payment.pk),
            "amount": payment.amount,
            "currency": payment.currency,
            "provider": payment.provider,
            "method": payment.method,
        },
    )
    _give_back_surplus(booking, payment)


ENDED_UNSOLD = (Booking.Status.CANCELLED, Booking.Status.EXPIRED, Booking.Status.REFUNDED)


def _give_back_surplus(booking: Booking, payment: Payment) -> None:
    """All of a payment for a booking no longer sold goes back; for any other (a completed tour still owing its
    balance, too) only what is beyond the total."""
    if booking.status in ENDED_UNSOLD:
        surplus, why = (
            payment.amount,
            f"the booking was {booking.get_status_display().lower()} when it arrived",
        )
    else:
        surplus, why = booking.paid - booking.total, "it was more than the booking's total"
    if surplus > 0:
        refunds.request_refund_locked(
            booking,
            amount=min(surplus, payment.amount),
            reason=f"Payment returned automatically: {why}.",
            request_key=f"surplus-{payment.pk}",
            actor=None,
            kind=refunds.Kind.SURPLUS,
            payments=[payment],
        )


def _record_failure(booking: Booking, payment: Payment, state: GatewayPayment) -> None:
    if payment.status == state.status:
        return
    payment.status = state.status
    payment.failure_code = state.failure_code[:60]
    payment.failure_reason = (state.failure_reason or state.failure_code)[:500]
    payment.save()
    publish(
        "payment.failed",
        booking,
        {
            "reference": booking.reference,
            "payment": str(payment.pk),
            "amount": payment.amount,
            "currency": payment.currency,
            "provider": payment.provider,
            "status": payment.status,
            "code": payment.failure_code,
            "off_session": payment.off_session,
        },
    )


# What a payer is told when the gateway refused our request or was down (its own words stay in the log: they may
# name our configuration).
NOT_STARTED = "The payment could not be started. Please try again in a moment or choose another way to pay."


def _fail_without_gateway(payment_id: uuid.UUID, error: GatewayError) -> None:
    """The gateway refused or could not be reached: the attempt is over (a retry is a new attempt)."""
    logger.warning("payment attempt %s not started: %s (%s)", payment_id, error.message, error.code)
    apply_gateway_state(
        payment_id,
        GatewayPayment(
            reference="",
            status=FAILED,
            amount=0,
            currency="",
            failure_code=error.code,
            failure_reason=NOT_STARTED,
        ),
    )


def sync_payment(payment: Payment, gateway: PaymentGateway | None = None) -> Payment:
    """Fetch the payment from its gateway and record it (the confirmation page, webhooks, reconciliation)."""
    if payment.provider == Provider.OFFLINE or not payment.provider_reference:
        return payment
    with _step():
        gateway = gateway or tenant_accounts.gateway_for(payment.provider)
    state = gateway.fetch_payment(payment.provider_reference)
    payment = apply_gateway_state(payment.pk, state)
    if payment.provider == Provider.PAYPAL and state.status == PENDING and not state.requires_action:
        # Approved by the payer but not captured (they closed the tab on the way back, or we crashed): the
        # payer meant to pay, so take it now.
        return capture_approved(payment)
    return payment


# --- checkout -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckoutAttempt:
    payment_id: uuid.UUID
    provider: str
    amount: int
    currency: str
    client_secret: str = ""  # Stripe: for the Payment Element
    publishable_key: str = ""
    approve_url: str = ""  # PayPal: send the payer here


class CheckoutUnavailable(ConflictError):
    """The chosen gateway is down (circuit open, or it just failed): the page offers the other one."""

    def __init__(self, provider: str):
        super().__init__(
            f"{Provider(provider).label} is not answering right now; please pay another way or try again in a minute.",
            code="gateway_unavailable",
        )
        self.provider = provider


def checkout_amount(booking: Booking, choice: str = "due") -> int:
    """What a checkout takes: ``due`` (what is due now; else the next installment, paid early) or ``balance``.
    An agency's booking is paid by the agency (its price is the agency's net rate, never shown to travellers)."""
    trade = booking.agency_id is not None or booking.channel == Booking.Channel.TRADE
    if booking.on_account or trade or booking.status not in schedules.PAYABLE_STATUSES:
        return 0
    owed = max(schedules.outstanding(booking), 0)
    if choice == "balance":
        return owed
    due = schedules.amount_due_now(booking)
    if due > 0:
        return due
    upcoming = schedules.next_installment(booking)
    return min(upcoming.outstanding, owed) if upcoming else 0


def _open_attempt(booking: Booking, provider: str, amount: int, since: dt.datetime) -> Payment | None:
    return (
        Payment.objects.filter(
            booking=booking,
            provider=provider,
            off_session=False,
            status__in=(PaymentStatus.CREATED, PaymentStatus.PENDING),
            amount=amount,
            created_at__gte=since,
        )
        .exclude(provider_reference="")
        .order_by("-created_at")
        .first()
    )


def start_checkout(
    booking: Booking, provider: str, *, choice: str = "due", return_url: str = "", cancel_url: str = ""
) -> CheckoutAttempt:
    """A payment the payer completes on the checkout page: a Stripe PaymentIntent for the Payment Element, or a
    PayPal order to approve. Reloading the page offers the same open attempt again; a different amount replaces
    it (the old one is cancelled at the gateway). With installments still to come after this one, Stripe saves
    the card on the booking's customer for the off-session charges."""
    if breaker(provider).state() == "open":
        raise CheckoutUnavailable(provider)
    with _step():
        booking = lock_booking(booking)
        gateway = tenant_accounts.gateway_for(provider)
        if not gateway.supports_currency(booking.currency):
            raise DomainError(
                f"{Provider(provider).label} does not take payments in {booking.currency}.",
                code="currency_unsupported",
            )
        amount = checkout_amount(booking, choice)
        if amount <= 0:
            raise ConflictError(f"Nothing is due on booking {booking.reference}.", code="nothing_due")
        if booking.status != Booking.Status.CONFIRMED:
            booking = keep_seats_for_payment(booking)
        reusable_since = timezone.now() - REUSE_OPEN_ATTEMPT_FOR
        payment = _open_attempt(booking, provider, amount, reusable_since)
        # Attempts for another amount or gateway are replaced. Not those for this one: a tab loaded at the same
        # moment may have made its own twin and be showing it. Nor one still waiting for its gateway's answer:
        # it is left to finish, or to reconciliation, rather than cancelled while its page may still pay it.
        others = (
            Payment.objects.filter(
                booking=booking, off_session=False, status__in=(PaymentStatus.CREATED, PaymentStatus.PENDING)
            )
            .exclude(provider_reference="")
            .exclude(provider=provider, amount=amount, created_at__gte=reusable_since)
        )
        replaced = list(others if payment is None else others.exclude(pk=payment.pk))
        if payment is None:
            payment = Payment(
                booking=booking,
                provider=provider,
                method=METHOD_OF[provider],
                amount=amount,
                currency=booking.currency,
            )
            payment.idempotency_key = f"checkout-{payment.pk}"
            payment.save()
        schedule = PaymentSchedule.objects.filter(booking=booking).first()
        save_card = (
            provider == Provider.STRIPE and schedule is not None and amount < schedules.outstanding(booking)
        )
        customer = schedule.customer_reference if schedule else ""
        lead = (booking.lead_email, booking.lead_name)
        metadata = _metadata(booking, payment)
        # The customer belongs to the booking, not to this attempt: the same key must carry the same parameters.
        customer_metadata = {"tenant": metadata["tenant"], "booking": metadata["booking"]}
        description = f"Booking {booking.reference}"

    def create() -> GatewayPayment:
        nonlocal customer
        if save_card and schedule is not None and not customer:  # saving the card: there is a schedule
            customer = gateway.create_customer(
                email=lead[0],
                name=lead[1],
                idempotency_key=f"customer-{booking.pk}",
                metadata=customer_metadata,
            )
            with _step():
                PaymentSchedule.objects.filter(pk=schedule.pk).update(customer_reference=customer)
        if payment.provider_reference:
            return gateway.fetch_payment(payment.provider_reference)
        return gateway.create_payment(
            amount=amount,
            currency=booking.currency,
            idempotency_key=payment.idempotency_key,
            description=description,
            metadata=metadata,
            customer=customer,
            save_payment_method=save_card,
            return_url=return_url,
            cancel_url=cancel_url,
        )

    try:
        if not breaker(provider).available():  # half-open: one caller probes, the others wait
            raise GatewayUnavailable(f"{Provider(provider).label} is recovering.", code="circuit_open")
        state = guarded(breaker(provider), create)
    except GatewayUnavailable as error:
        _fail_without_gateway(payment.pk, error)
        raise CheckoutUnavailable(provider) from error
    except GatewayError as error:
        _fail_without_gateway(payment.pk, error)
        raise DomainError(NOT_STARTED, code=error.code) from error
    recorded = apply_gateway_state(payment.pk, state)
    for stale in replaced:
        cancel_attempt(stale, gateway)
    return CheckoutAttempt(
        payment_id=recorded.pk,
        provider=provider,
        amount=recorded.amount,
        currency=recorded.currency,
        client_secret=state.client_secret,
        publishable_key=getattr(gateway, "publishable_key", ""),
        approve_url=state.approve_url,
    )


def cancel_attempt(payment: Payment, gateway: PaymentGateway | None = None) -> None:
    """Abandon an attempt replaced by a newer one (best effort: if the payer completed it meanwhile, the
    gateway says so and it is recorded as succeeded; a surplus is then refunded)."""
    try:
        if payment.provider_reference:
            with _step():
                gateway = gateway or tenant_accounts.gateway_for(payment.provider)
            state = gateway.cancel_payment(payment.provider_reference)
        else:
            state = GatewayPayment(
                reference="", status=CANCELLED, amount=0, currency="", failure_code="replaced"
            )
        apply_gateway_state(payment.pk, state)
    except GatewayError as error:
        logger.warning("could not cancel payment attempt %s: %s", payment.pk, error.message)


def capture_approved(payment: Payment) -> Payment:
    """The payer approved a PayPal order and came back: take the money (idempotent: a reload captures once)."""
    if payment.status == PaymentStatus.SUCCEEDED:
        return payment
    with _step():
        gateway = tenant_accounts.gateway_for(payment.provider)
    try:
        state = guarded(
            breaker(payment.provider),
            lambda: gateway.capture(
                payment.provider_reference, idempotency_key=f"{payment.idempotency_key}-capture"
            ),
        )
    except GatewayDeclined as error:
        state = GatewayPayment(
            reference=payment.provider_reference,
            status=FAILED,
            amount=payment.amount,
            currency=payment.currency,
            failure_code=error.code,
            failure_reason=error.message,
        )
    return apply_gateway_state(payment.pk, state)


def attempt_for_page(booking: Booking, payment_id: uuid.UUID | str | None) -> Payment | None:
    """A checkout attempt of this booking (the confirmation page names it in its URL)."""
    if payment_id is None:  # none named: as no such payment
        return None
    try:
        return Payment.objects.filter(booking=booking, off_session=False).get(pk=payment_id)
    except (Payment.DoesNotExist, ValueError, TypeError, ValidationError):
        return None


def unsettled(older_than: dt.timedelta, limit: int) -> list[Payment]:
    """Gateway attempts still ``created`` / ``pending`` after ``older_than`` (crash windows, lost webhooks)."""
    return list(
        Payment.objects.filter(
            ~Q(provider=Provider.OFFLINE),
            status__in=(PaymentStatus.CREATED, PaymentStatus.PENDING),
            updated_at__lte=timezone.now() - older_than,
        ).order_by("updated_at")[:limit]
    )
