"""Payment schedules: how much of a booking is due when.

A booking's schedule is planned from its tour's payment terms (else the tenant's default terms, else "in full at
booking") when the booking is made, and re-planned — same terms, same dates rule — when its total or departure
changes. Which installments are paid is never stored: the booking's net paid amount covers them in order, so an
early payment, an offline payment, a refund or a change of total all fall out of one rule.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from django.db.models import Min, Sum
from django.utils import timezone

from bookings.models import Booking, BookingItem
from core.currencies import minor_units
from payments.models import Installment, PaymentSchedule, PaymentTerms, Refund

InstallmentKind = Installment.Kind
Status = Booking.Status
# A booking takes money while it is being sold and once it is sold; never once it has ended.
PAYABLE_STATUSES = (Status.ON_HOLD, Status.AWAITING_PAYMENT, Status.CONFIRMED)


def charge_step(currency: str) -> int:
    """The smallest amount step a card can be charged in ``currency``, in minor units. Card networks settle
    three-decimal currencies (BHD, KWD, JOD…) in tens of fils, so Stripe takes only multiples of 10 there:
    installments are split in those steps and only the last one carries an odd remainder."""
    return 10 if minor_units(currency) == 3 else 1


@dataclass(frozen=True)
class PlannedInstallment:
    kind: str
    due_on: dt.date
    amount: int


def terms_snapshot(terms: PaymentTerms | None) -> dict:
    if terms is None:
        return {"name": "", "kind": PaymentTerms.Kind.FULL}
    return {
        "name": terms.name,
        "kind": terms.kind,
        "deposit_percent": str(terms.deposit_percent) if terms.deposit_percent is not None else None,
        "deposit_amount": terms.deposit_amount,
        "deposit_currency": terms.deposit_currency,
        "installment_count": terms.installment_count,
        "balance_days_before": terms.balance_days_before,
        "retry_days": list(terms.retry_days),
        "after_final_failure": terms.after_final_failure,
        "reminder_days_before": terms.reminder_days_before,
    }


def _round_down(amount: int | Decimal, step: int) -> int:
    return int(Decimal(amount).quantize(Decimal(1), rounding=ROUND_DOWN)) // step * step


def _deposit(total: int, currency: str, terms: dict) -> int | None:
    """The deposit, or None when the terms give none this booking can use (then it is paid in full)."""
    step = charge_step(currency)
    if terms.get("deposit_amount") and terms.get("deposit_currency") == currency:
        deposit = terms["deposit_amount"]
    elif terms.get("deposit_percent"):
        deposit = _round_down(Decimal(total) * Decimal(terms["deposit_percent"]) / 100, step)
    else:  # a fixed deposit in another currency: never converted, so this booking is paid in full
        return None
    return deposit if 0 < deposit < total else None


def plan(
    total: int, currency: str, terms: dict, booked_on: dt.date, departure_on: dt.date
) -> list[PlannedInstallment]:
    """The installments of ``total`` (minor units of ``currency``) under ``terms`` (a ``terms_snapshot``).

    Everything is due at booking when the terms say so, when the balance date (``balance_days_before`` the
    departure) is not after the booking day, or when the terms give no usable deposit. A deposit is a percent of
    the total (rounded down to the currency's charge step) or a fixed amount in the booking's currency. N
    installments are equal (rounded down to the step) with the remainder on the last, due from the booking day to
    the balance date at even intervals. The amounts always add up to ``total`` exactly."""
    kind = terms.get("kind", PaymentTerms.Kind.FULL)
    balance_on = departure_on - dt.timedelta(days=int(terms.get("balance_days_before") or 0))
    in_full = [PlannedInstallment(InstallmentKind.FULL, booked_on, total)]
    if total <= 0 or kind == PaymentTerms.Kind.FULL or balance_on <= booked_on:
        return in_full
    if kind == PaymentTerms.Kind.DEPOSIT:
        deposit = _deposit(total, currency, terms)
        if deposit is None:
            return in_full
        return [
            PlannedInstallment(InstallmentKind.DEPOSIT, booked_on, deposit),
            PlannedInstallment(InstallmentKind.BALANCE, balance_on, total - deposit),
        ]
    count = max(2, int(terms.get("installment_count") or 2))
    part = _round_down(Decimal(total) / count, charge_step(currency))
    if part <= 0:
        return in_full
    span = (balance_on - booked_on).days
    return [
        PlannedInstallment(
            InstallmentKind.INSTALLMENT,
            booked_on + dt.timedelta(days=span * index // (count - 1)),
            part if index < count - 1 else total - part * (count - 1),
        )
        for index in range(count)
    ]


def _terms_for(items: list[BookingItem]) -> PaymentTerms | None:
    """The first item's tour's terms, else the tenant's default (a booking of several tours follows its first)."""
    for item in items:
        if item.departure.tour.payment_terms_id:
            return item.departure.tour.payment_terms
    return PaymentTerms.objects.filter(is_default=True).first()


def _departure_day(booking: Booking) -> dt.date | None:
    first = booking.items.aggregate(first=Min("departure__starts_at"))["first"]
    return timezone.localdate(first) if first else None


def create_schedule(booking: Booking, items: list[BookingItem]) -> PaymentSchedule | None:
    """Plan a new booking's payments (inside its creating transaction). An on-account trade booking has none: the
    agency settles it by statement."""
    if booking.on_account:
        return None
    terms = terms_snapshot(_terms_for(items))
    schedule = PaymentSchedule.objects.create(booking=booking, kind=terms["kind"], terms=terms)
    _store(schedule, booking)
    return schedule


def replan(booking: Booking) -> None:
    """Re-plan after the booking's total or departure changed (inside that change's transaction, the booking row
    locked). Installments keep their sequence numbers and retry state where they still exist."""
    schedule = PaymentSchedule.objects.filter(booking=booking).first()
    if schedule is not None:
        _store(schedule, booking)


def _store(schedule: PaymentSchedule, booking: Booking) -> None:
    booked_on = timezone.localdate(booking.created_at or timezone.now())
    departure_on = _departure_day(booking) or booked_on
    planned = plan(booking.total, booking.currency, schedule.terms, booked_on, departure_on)
    existing = {installment.sequence: installment for installment in schedule.installments.all()}
    for sequence, part in enumerate(planned, start=1):
        installment = existing.pop(sequence, None) or Installment(schedule=schedule, sequence=sequence)
        changed = (installment.kind, installment.due_on, installment.amount) != (
            part.kind,
            part.due_on,
            part.amount,
        )
        if installment._state.adding or changed:
            installment.kind, installment.due_on, installment.amount = part.kind, part.due_on, part.amount
            # A changed installment starts afresh: earlier failures were about another amount or day.
            installment.attempts, installment.attempts_dunned, installment.next_attempt_on = 0, 0, None
            installment.dunning, installment.last_failure = Installment.Dunning.NONE, ""
            installment.save()
    if existing:
        Installment.objects.filter(pk__in=[installment.pk for installment in existing.values()]).delete()


@dataclass(frozen=True)
class InstallmentState:
    installment: Installment
    covered: int  # minor units of it the booking's net paid covers
    due: bool  # its day has come (the first one: always)

    @property
    def paid(self) -> bool:
        return self.covered >= self.installment.amount

    @property
    def outstanding(self) -> int:
        return self.installment.amount - self.covered


def settled(booking: Booking) -> int:
    """What of the booking's total is taken care of: its net paid amount plus goodwill refunds (money given back
    as a gesture lowers what is owed; it is not asked for again)."""
    goodwill = Refund.objects.filter(
        booking=booking, kind__in=Refund.Kind.gestures(), status=Refund.Status.SUCCEEDED
    ).aggregate(total=Sum("amount"))["total"]
    return booking.paid + (goodwill or 0)


def outstanding(booking: Booking) -> int:
    """What the customer still owes (the balance less goodwill refunds)."""
    return booking.total - settled(booking)


def installment_states(booking: Booking, today: dt.date | None = None) -> list[InstallmentState]:
    """The schedule with what the booking's settled amount covers of each installment, in order."""
    today = today or timezone.localdate()
    remaining = max(settled(booking), 0)
    states = []
    for installment in Installment.objects.filter(schedule__booking=booking).order_by("sequence"):
        covered = min(remaining, installment.amount)
        remaining -= covered
        states.append(
            InstallmentState(installment, covered, installment.sequence == 1 or installment.due_on <= today)
        )
    return states


def amount_due_now(booking: Booking, today: dt.date | None = None) -> int:
    """Minor units the customer must pay now: before a booking is confirmed, its first installment (a deposit,
    or everything); once confirmed, the installments whose day has come. An on-account trade booking owes nothing
    now (it is invoiced to the agency; its credit decides its confirmation); a booking no longer being sold or
    travelled on owes nothing. A booking without a schedule (made before schedules existed) owes its balance."""
    if booking.on_account or booking.status not in PAYABLE_STATUSES:
        return 0
    balance = outstanding(booking)
    if balance <= 0:
        return 0
    states = installment_states(booking, today)
    if not states:
        return balance
    return min(balance, sum(state.outstanding for state in states if state.due))


def next_installment(booking: Booking, today: dt.date | None = None) -> InstallmentState | None:
    """The first installment not fully paid (what "pay the next installment early" pays)."""
    return next((state for state in installment_states(booking, today) if not state.paid), None)
