"""Installments charged automatically on the saved card, with retries and dunning.

A beat task looks, for every tenant, at confirmed bookings with an installment whose day has come and which the
booking's net paid does not cover. With a saved card it is charged off-session (one ``Payment`` per attempt,
idempotency key = installment + payment id); without one — or when the bank wants the payer present (3-D
Secure) — the payer is asked to pay from their booking page. A failed attempt is retried after the terms'
``retry_days`` (default +1, +3, +7 days) with an email each time, the last one a final notice; after the last
failure the terms decide: cancel the booking (its cancellation terms apply) or flag it for staff.

Installments that fall due together are charged together: the earliest unpaid one leads, with one attempt and
one dunning track for all that is due. Runs may overlap (a redelivered task, two beats): each decision is taken
again under the booking's row lock, and a failure is dunned once per attempt. A schedule flagged for staff
(a request Stripe refused, a charge whose outcome is unknown, retries exhausted, money taken back in a dispute)
is not charged automatically until staff resume it (``resume_automatic_charges``).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import TYPE_CHECKING

from django.db.models import DateField, ExpressionWrapper, F, IntegerField, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce
from django.http import HttpRequest
from django.utils import timezone

from bookings import services as booking_services
from bookings.locks import lock_booking
from bookings.models import Booking
from core.errors import ConflictError, DomainError
from events.outbox import publish
from payments.gateways import tenant_accounts
from payments.gateways.base import (
    FAILED,
    GatewayDeclined,
    GatewayPayment,
    GatewayRejected,
    GatewayUnavailable,
)
from payments.gateways.breaker import guarded
from payments.models import (
    DEFAULT_REMINDER_DAYS,
    Installment,
    Payment,
    PaymentSchedule,
    PaymentTerms,
    default_retry_days,
)
from payments.services import online, schedules
from tenants import audit
from tenants.context import require_tenant_id, tenant_context

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

Dunning = Installment.Dunning
PaymentStatus = Payment.Status
BATCH = 200


def installments_due(today: dt.date, limit: int = BATCH) -> list[Installment]:
    """Installments of confirmed bookings that have fallen due, are not given up, and whose retry day (if
    any) has come. Coverage by what was paid is checked per booking when charging."""
    return list(
        Installment.objects.filter(
            due_on__lte=today,
            sequence__gt=1,
            schedule__booking__status=Booking.Status.CONFIRMED,
            schedule__booking__on_account=False,
            # Paid-up bookings would fill the batch and starve the ones that owe.
            schedule__booking__paid__lt=F("schedule__booking__total"),
            schedule__needs_attention=False,
        )
        .exclude(dunning=Dunning.GAVE_UP)
        .exclude(next_attempt_on__gt=today)
        .select_related("schedule")
        .order_by("due_on", "id")[:limit]
    )


def retry_days(schedule: PaymentSchedule) -> tuple[int, ...]:
    days = schedule.terms.get("retry_days")
    return tuple(int(day) for day in (default_retry_days() if days is None else days))


def charge_installment(installment_id: uuid.UUID, today: dt.date | None = None) -> Payment | None:
    """One automatic attempt on one installment (outside any transaction). Returns the attempt, or None when
    there was nothing to charge (paid meanwhile) or no card to charge (the payer was asked to pay).

    An attempt left unsettled by a crash or an outage is sent again as it was (same amount, same idempotency
    key: Stripe answers with the first outcome, never a second charge) before any new attempt is made."""
    today = today or timezone.localdate()
    with tenant_context(require_tenant_id()):
        schedule_booking = Installment.objects.values_list("schedule__booking_id", flat=True).get(
            pk=installment_id
        )
        booking = lock_booking(schedule_booking)
        installment = Installment.objects.select_related("schedule").get(
            pk=installment_id
        )  # fresh, under lock
        unsettled = _unsettled_attempt(installment)
        if unsettled is None:
            undunned = _undunned_failure(installment)
            if undunned is not None:
                # Its failure was recorded (by another run, reconciliation or a webhook) but not yet dunned: the
                # payer hears of it and the retry waits for its day, rather than the card being charged again now.
                _dun(booking, installment, undunned, today)
                return None
            if not _its_turn(booking, installment, today):
                return None
            owed = _still_owed(booking, installment, today)
            if owed <= 0:
                return None
            if not installment.schedule.payment_method_reference:
                _ask_payer(booking, installment, owed, "no_saved_card", today)
                return None
            installment.attempts += 1
            installment.save(update_fields=["attempts"])
            unsettled = Payment(
                booking=booking,
                provider=Payment.Provider.STRIPE,
                method=Payment.Method.CARD,
                amount=owed,
                currency=booking.currency,
                installment=installment,
                off_session=True,
                payment_method_summary=installment.schedule.payment_method_summary,
            )
            # Unique per attempt for good: ``attempts`` restarts when the installment is re-planned.
            unsettled.idempotency_key = f"installment-{installment.pk}-{unsettled.pk}"
            unsettled.save()
    payment = send_attempt(unsettled)
    if payment.status == Payment.Status.FAILED and payment.failure_code not in NOT_DUNNED:
        record_failed_attempt(installment.pk, today)
    return payment


# The gateway refused our request itself (not the card): staff look at it; the payer is not dunned for it.
REQUEST_REFUSED = ("request_refused",)
# Failures that are not the card's: nobody is dunned; the schedule is flagged for staff instead. An unknown
# outcome (set by reconciliation) may well have been charged.
UNKNOWN_OUTCOME = "unknown_outcome"
NOT_DUNNED = (*REQUEST_REFUSED, UNKNOWN_OUTCOME)


def _unsettled_attempt(installment: Installment) -> Payment | None:
    return (
        Payment.objects.filter(
            installment=installment,
            off_session=True,
            status__in=(PaymentStatus.CREATED, PaymentStatus.PENDING),
        )
        .order_by("created_at")
        .first()
    )


def send_attempt(payment: Payment) -> Payment:
    """Send an off-session attempt to Stripe — again, if it was sent before: the same parameters and key make
    Stripe replay its first answer — or, once Stripe has it, fetch it. An outage leaves the attempt unsettled
    (sent again by the next run) and raises ``GatewayUnavailable``."""
    with tenant_context(require_tenant_id()):
        if payment.installment_id is None:  # its installment was re-planned away (SET_NULL): a missing row
            raise Installment.DoesNotExist(f"Payment {payment.pk} has no installment.")
        installment = Installment.objects.select_related("schedule", "schedule__booking").get(
            pk=payment.installment_id
        )
        schedule, booking = installment.schedule, installment.schedule.booking
        gateway = tenant_accounts.gateway_for(Payment.Provider.STRIPE)

    def call() -> GatewayPayment:
        if payment.provider_reference:
            return gateway.fetch_payment(payment.provider_reference)
        return gateway.charge_saved_method(
            amount=payment.amount,
            currency=payment.currency,
            customer=schedule.customer_reference,
            payment_method=schedule.payment_method_reference,
            idempotency_key=payment.idempotency_key,
            description=f"Booking {booking.reference}: installment {installment.sequence}",
            metadata={
                "tenant": str(booking.tenant_id),
                "booking": booking.reference,
                "payment": str(payment.pk),
            },
        )

    try:
        state = guarded(online.breaker(Payment.Provider.STRIPE), call)
    except GatewayDeclined as error:
        state = _failed(error.code, error.message)
    except GatewayRejected as error:
        logger.error("installment charge %s refused by Stripe: %s", payment.pk, error.message)
        with tenant_context(require_tenant_id()):
            PaymentSchedule.objects.filter(pk=schedule.pk).update(needs_attention=True)
        state = _failed(REQUEST_REFUSED[0], error.message)
    return online.apply_gateway_state(payment.pk, state)


def _failed(code: str, reason: str) -> GatewayPayment:
    return GatewayPayment(
        reference="", status=FAILED, amount=0, currency="", failure_code=code, failure_reason=reason
    )


def _undunned_failure(installment: Installment) -> Payment | None:
    """The installment's latest attempt, if it failed for the card (not our request) and was not dunned yet."""
    if installment.attempts_dunned >= installment.attempts:
        return None
    latest = Payment.objects.filter(installment=installment, off_session=True).order_by("-created_at").first()
    if latest is None or latest.status != PaymentStatus.FAILED or latest.failure_code in NOT_DUNNED:
        return None
    return latest


def _its_turn(booking: Booking, installment: Installment, today: dt.date) -> bool:
    """Whether this run may charge (or ask for) this installment, decided under the booking's lock: the booking
    still confirmed, the installment not given up, its retry day come (another run may have dunned it since this
    one listed it), and no earlier installment still unpaid and not given up — that one leads, and its charge
    takes this one too, so that two installments falling due together make one charge and one dunning email."""
    if booking.status != Booking.Status.CONFIRMED or installment.dunning == Dunning.GAVE_UP:
        return False
    if installment.schedule.needs_attention:
        return False  # staff look at this booking's payments first
    if installment.next_attempt_on is not None and installment.next_attempt_on > today:
        return False
    return not _an_earlier_one_leads(booking, installment)


def _an_earlier_one_leads(booking: Booking, installment: Installment) -> bool:
    """An earlier installment still unpaid and not given up: its charge (and its retries) take this one along."""
    return any(
        1 < state.installment.sequence < installment.sequence  # the first is never charged by the beat
        and state.outstanding > 0
        and state.installment.dunning != Dunning.GAVE_UP
        for state in schedules.installment_states(booking)
    )


def _still_owed(booking: Booking, installment: Installment, today: dt.date) -> int:
    """What the booking's payments do not cover yet of this installment, any earlier one, and any later one that
    has fallen due as well."""
    states = schedules.installment_states(booking, today)
    owed = sum(
        state.outstanding
        for state in states
        if state.installment.sequence <= installment.sequence or state.due
    )
    return min(owed, max(schedules.outstanding(booking), 0))


def _ask_payer(booking: Booking, installment: Installment, owed: int, why: str, today: dt.date) -> None:
    """No card to charge (or the bank wants the payer): email a payment-due notice once per installment and
    retry day, with the link to pay from the booking page."""
    installment.attempts += 1
    _schedule_retry_or_give_up(booking, installment, owed, why, today)


def record_failed_attempt(installment_id: uuid.UUID, today: dt.date) -> None:
    """Dun the installment's failed attempt, read again under the lock: another run may have dunned it already,
    or a late answer turned it into a success."""
    with tenant_context(require_tenant_id()):
        booking_id = Installment.objects.values_list("schedule__booking_id", flat=True).get(pk=installment_id)
        booking = lock_booking(booking_id)
        installment = Installment.objects.select_related("schedule").get(pk=installment_id)  # under the lock
        failed = _undunned_failure(installment)
        if failed is not None:
            _dun(booking, installment, failed, today)


def _dun(booking: Booking, installment: Installment, payment: Payment, today: dt.date) -> None:
    """Act on a failed attempt (under the booking's lock): plan the retry with an email, or give up. Nothing to
    act on (the booking was cancelled, or the money paid, meanwhile) still counts the failure as handled."""
    owed = _still_owed(booking, installment, today)
    if owed <= 0 or booking.status != Booking.Status.CONFIRMED:
        installment.attempts_dunned = installment.attempts
        installment.save(update_fields=["attempts_dunned"])
        return
    installment.last_failure = (payment.failure_reason or payment.failure_code)[:500]
    _schedule_retry_or_give_up(booking, installment, owed, payment.failure_code or "declined", today)


DUNNING_FIELDS = ("attempts", "attempts_dunned", "next_attempt_on", "dunning", "last_failure")


def _schedule_retry_or_give_up(
    booking: Booking, installment: Installment, owed: int, why: str, today: dt.date
) -> None:
    days = retry_days(installment.schedule)
    attempt = installment.attempts
    installment.attempts_dunned = attempt
    if attempt <= len(days):
        installment.next_attempt_on = today + dt.timedelta(days=days[attempt - 1])
        installment.dunning = Dunning.FINAL_NOTICE if attempt == len(days) else Dunning.FAILED
        installment.save(update_fields=[*DUNNING_FIELDS])
        publish(
            "payment.installment_failed",
            booking,
            {
                "reference": booking.reference,
                "installment": str(installment.pk),
                "sequence": installment.sequence,
                "amount": owed,
                "currency": booking.currency,
                "reason": why,
                "attempt": attempt,
                "next_attempt_on": installment.next_attempt_on.isoformat(),
                "final_notice": installment.dunning == Dunning.FINAL_NOTICE,
            },
        )
        return
    installment.dunning, installment.next_attempt_on = Dunning.GAVE_UP, None
    installment.save(update_fields=[*DUNNING_FIELDS])
    outcome = installment.schedule.terms.get("after_final_failure") or PaymentTerms.AfterFinalFailure.FLAG
    publish(
        "payment.installment_unpaid",
        booking,
        {
            "reference": booking.reference,
            "installment": str(installment.pk),
            "amount": owed,
            "currency": booking.currency,
            "attempts": attempt,
            "outcome": outcome,
        },
    )
    if outcome == PaymentTerms.AfterFinalFailure.CANCEL:
        booking_services.cancel_booking(
            booking, reason=f"Installment {installment.sequence} unpaid after {attempt} attempts"
        )
    else:
        PaymentSchedule.objects.filter(pk=installment.schedule_id).update(needs_attention=True)


def unknown_outcomes(booking: Booking) -> list[Payment]:
    """Automatic charges whose outcome was never learnt (Stripe may have taken the money)."""
    return list(
        Payment.objects.filter(
            booking=booking, off_session=True, status=PaymentStatus.FAILED, failure_code=UNKNOWN_OUTCOME
        )
    )


def resume_automatic_charges(
    booking: Booking,
    *,
    note: str,
    actor: User | None,
    request: HttpRequest | None = None,
    checked_not_charged: bool = False,
) -> int:
    """Staff looked at a booking whose schedule was flagged for them and let automatic charging go on: the flag
    is cleared, and the installments still unpaid start their retries afresh (a new first attempt, new emails).
    Returns how many installments were reset. ``note`` (what was done about it) goes to the audit trail.

    Refused while an automatic charge is still waiting for its answer, and, when a charge's outcome was never
    learnt, unless staff confirm they checked at Stripe that it did not go through (else it is charged twice)."""
    note = (note or "").strip()
    if not note:
        raise DomainError(
            "Say what was done about it (kept in the audit trail).",
            code="invalid",
            fields={"note": ["Required."]},
        )
    with tenant_context(require_tenant_id()):
        booking = lock_booking(booking)
        schedule = PaymentSchedule.objects.filter(booking=booking).first()
        if schedule is None or not schedule.needs_attention:
            raise ConflictError(
                f"Automatic charges of booking {booking.reference} are not paused.", code="not_paused"
            )
        if Payment.objects.filter(
            booking=booking, off_session=True, status__in=(PaymentStatus.CREATED, PaymentStatus.PENDING)
        ).exists():
            raise ConflictError(
                "An automatic charge of this booking is still waiting for Stripe's answer; resume once it has "
                "one (reconciliation asks every few minutes).",
                code="charge_in_flight",
            )
        if unknown_outcomes(booking) and not checked_not_charged:
            raise DomainError(
                "A charge of this booking never got an answer: check in the Stripe dashboard that it did not go "
                "through, and confirm it, before charging again.",
                code="unknown_outcome",
                fields={"checked_not_charged": ["Required: check the charge at Stripe first."]},
            )
        unpaid = [
            state.installment.pk
            for state in schedules.installment_states(booking)
            if state.installment.sequence > 1 and state.outstanding > 0
        ]
        Installment.objects.filter(pk__in=unpaid).update(
            attempts=0, attempts_dunned=0, next_attempt_on=None, dunning=Dunning.NONE, last_failure=""
        )
        PaymentSchedule.objects.filter(pk=schedule.pk).update(
            needs_attention=False, updated_at=timezone.now()
        )
        audit.record(
            audit.Action.CHANGE,
            actor=actor,
            target=booking,
            request=request,
            changes={
                "automatic_charges": ["paused", "resumed"],
                "note": [None, note[:500]],
                **({"checked_not_charged_at_stripe": [None, True]} if checked_not_charged else {}),
            },
        )
    return len(unpaid)


def remind_upcoming(today: dt.date | None = None, limit: int = BATCH) -> int:
    """Tell payers what their next installment is and when it will be charged on their card (or is to be paid),
    the terms' ``reminder_days_before`` ahead; once per installment and due day. Returns how many were reminded."""
    today = today or timezone.localdate()
    reminder_days = Coalesce(
        Cast(KeyTextTransform("reminder_days_before", "schedule__terms"), IntegerField()),
        Value(DEFAULT_REMINDER_DAYS),
    )
    with tenant_context(require_tenant_id()):
        upcoming = list(
            Installment.objects.annotate(reminder_days=reminder_days)
            .filter(
                sequence__gt=1,
                due_on__gt=today,
                reminder_days__gt=0,
                due_on__lte=ExpressionWrapper(Value(today) + F("reminder_days"), output_field=DateField()),
                schedule__booking__status=Booking.Status.CONFIRMED,
                schedule__booking__on_account=False,
                schedule__booking__agency__isnull=True,  # the agency pays on its own terms
                schedule__booking__paid__lt=F("schedule__booking__total"),
            )
            .exclude(reminded_for=F("due_on"))
            .order_by("due_on", "id")
            .values_list("pk", flat=True)[:limit]
        )
    reminded = 0
    for installment_id in upcoming:
        try:
            reminded += _remind(installment_id)
        except Exception:  # one booking's trouble must not hold up the others (nor the charging after it)
            logger.exception("installment %s: no reminder sent", installment_id)
    return reminded


def _remind(installment_id: uuid.UUID) -> int:
    """Remind of one installment as it will be charged: with whatever else falls due that day (installments due
    together are charged together), and not while an earlier one is still being dunned (that one leads, and its
    retries take this one along when it falls due)."""
    with tenant_context(require_tenant_id()):
        booking_id = Installment.objects.values_list("schedule__booking_id", flat=True).get(pk=installment_id)
        booking = lock_booking(booking_id)
        installment = Installment.objects.select_related("schedule").get(pk=installment_id)  # under the lock
        if installment.reminded_for == installment.due_on or booking.status != Booking.Status.CONFIRMED:
            return 0  # another run reminded it meanwhile, or the booking changed
        if _an_earlier_one_leads(booking, installment):
            return 0  # reminded later, if still relevant
        amount = _still_owed(booking, installment, installment.due_on)
        if amount <= 0:
            return 0  # paid early
        schedule = installment.schedule
        automatic = bool(schedule.payment_method_reference) and not schedule.needs_attention
        installment.reminded_for = installment.due_on
        installment.save(update_fields=["reminded_for"])
        publish(
            "payment.installment_upcoming",
            booking,
            {
                "reference": booking.reference,
                "installment": str(installment.pk),
                "sequence": installment.sequence,
                "amount": amount,
                "currency": booking.currency,
                "due_on": installment.due_on.isoformat(),
                # Charged automatically on this card; none: the payer pays from the booking page.
                "card": schedule.payment_method_summary if automatic else "",
            },
        )
        return 1


def charge_due_installments(today: dt.date | None = None) -> int:
    """Every due installment of the current tenant, one attempt each; returns how many were looked at."""
    today = today or timezone.localdate()
    with tenant_context(require_tenant_id()):
        due = installments_due(today)
    for installment in due:
        try:
            charge_installment(installment.pk, today)
        except GatewayUnavailable:
            logger.warning("installments: Stripe unavailable; the next run tries again")
            break
        except Exception:
            logger.exception("installment %s could not be charged", installment.pk)
    return len(due)
