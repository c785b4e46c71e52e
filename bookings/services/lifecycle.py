"""A booking's life after it is made: confirmed when nothing is due now (or on account within the agency's credit),
cancelled under its cancellation terms, expired when its seats lapse, completed, a no-show, refunded."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from django.db import transaction
from django.db.models import Max, Min
from django.http import HttpRequest
from django.utils import timezone

from bookings import money, selectors
from bookings.locks import lock_booking
from bookings.models import Booking
from bookings.services.credit import check_credit
from bookings.services.transitions import (
    IllegalTransition,
    Status,
    lock_seats_of,
    locked_for,
    move_to,
    record_staff_action,
)
from core.errors import ConflictError, DomainError
from core.money import format_money
from events.outbox import publish
from inventory import services as inventory
from inventory.models import Hold
from partners.locks import lock_agency
from partners.models import Agency
from tenants import audit
from tenants.context import require_tenant_id, tenant_context
from tours import services as promotions
from tours.models import PromoRedemption

if TYPE_CHECKING:
    from accounts.models import User


@transaction.atomic
def confirm_booking(
    booking: Booking,
    *,
    actor: User | None = None,
    reason: str = "",
    request: HttpRequest | None = None,
) -> Booking:
    """Held seats become sold. Allowed when nothing is due now (paid, nothing to pay), or for an on-account
    booking when the agency's credit covers it."""
    # Its credit decides: the agency before the booking (core.locking). An on-account booking always has its
    # agency (CHECK booking_on_account_needs_agency): never None here.
    if booking.on_account:
        lock_agency(cast(uuid.UUID, booking.agency_id))
    booking = locked_for(booking, Status.CONFIRMED)
    before = booking.status
    if booking.on_account:
        if booking.currency != cast(Agency, booking.agency).currency:
            raise ConflictError("On-account bookings are in the agency's currency.", code="currency_mismatch")
        check_credit(booking)
    elif (due := money.keeper().due_now(booking)) > 0:
        raise ConflictError(
            f"{format_money(due, booking.currency)} is still due; take the payment first.",
            code="payment_due",
        )
    lock_seats_of(booking)
    for item in booking.items.select_related("hold"):
        if item.hold is not None:
            inventory.convert_hold(item.hold)
    booking.confirmed_at = timezone.now()
    booking.expires_at = None
    move_to(booking, Status.CONFIRMED, actor=actor, reason=reason)
    record_staff_action(booking, actor, {"status": [before, booking.status]}, request)
    return booking


def _give_back_promo(booking: Booking) -> None:
    for redemption in PromoRedemption.objects.filter(reference=str(booking.pk), released_at__isnull=True):
        promotions.release_promo(redemption)


@dataclass(frozen=True)
class CancellationTerms:
    """What cancelling now costs, per the tours' cancellation tiers (the strictest item decides).

    ``refund_percent`` of the price is waived; the rest is the ``charge`` the operator keeps. ``credit`` is what a
    credit note takes off the invoice; ``refundable`` is what goes back of the money received (never more than
    was paid, nothing while the charge is not covered)."""

    refund_percent: int
    charge: int
    credit: int
    refundable: int
    days_before: int | None


def cancellation_terms(booking: Booking, at: dt.datetime | None = None) -> CancellationTerms:
    at = at or timezone.now()
    if booking.status != Status.CONFIRMED:  # nothing was sold yet: cancelling costs nothing
        return CancellationTerms(100, 0, booking.total, booking.paid, None)
    percents, days = [], []
    for item in booking.items.select_related("departure", "option__tour"):
        days_before = (item.departure.starts_at - at).days
        tier = (
            item.option.tour.cancellation_tiers.filter(days_before__lte=days_before)
            .order_by("-days_before")
            .first()
        )
        percents.append(tier.refund_percent if tier else 0)
        days.append(days_before)
    percent = min(percents, default=0)
    charge = booking.total - booking.total * percent // 100
    return CancellationTerms(
        refund_percent=percent,
        charge=charge,
        credit=booking.total - charge,
        refundable=max(0, booking.paid - charge),
        days_before=min(days, default=None),
    )


@transaction.atomic
def cancel_booking(
    booking: Booking,
    *,
    actor: User | None = None,
    reason: str = "",
    refundable_override: int | None = None,
    request: HttpRequest | None = None,
) -> Booking:
    """Seats go back on sale (held or sold). The cancellation terms go into ``booking.cancelled`` for the credit
    note, and what they give back of the money paid is refunded. Staff may override the refundable amount
    (0 … paid) with a reason; the override is audited."""
    booking = locked_for(booking, Status.CANCELLED)
    before = booking.status
    terms = cancellation_terms(booking)
    refundable = terms.refundable
    if refundable_override is not None:
        if isinstance(refundable_override, bool) or not isinstance(refundable_override, int):
            raise DomainError.for_field(
                "The refundable amount is a whole number of minor units.", "refundable"
            )
        if not 0 <= refundable_override <= booking.paid:
            raise DomainError.for_field(
                f"The refundable amount is between 0 and what was paid ({booking.paid}).", "refundable"
            )
        if not reason.strip():
            raise DomainError.for_field("Say why the policy's refundable amount is overridden.", "reason")
        audit.record(
            audit.Action.CHANGE,
            actor=actor,
            target=booking,
            changes={"refundable": [terms.refundable, refundable_override], "reason": [None, reason.strip()]},
            request=request,
        )
        refundable = refundable_override
    lock_seats_of(booking)
    for item in booking.items.select_related("hold"):
        if item.hold is None:
            continue
        if item.hold.status == Hold.Status.CONVERTED:
            inventory.release_sold_hold(item.hold)
        elif item.hold.status == Hold.Status.ACTIVE:
            inventory.release_hold(item.hold)
    _give_back_promo(booking)
    booking.cancelled_at = timezone.now()
    booking.expires_at = None
    charge, credit = terms.charge, terms.credit
    if refundable != terms.refundable:
        # Giving back more than the policy lowers the charge by as much (goodwill), giving back less raises it.
        charge = min(max(terms.charge - (refundable - terms.refundable), 0), booking.total)
        credit = booking.total - charge
    booking.cancellation_charge = charge
    payload = {
        "refund_percent": terms.refund_percent,
        "charge": charge,
        "credit": credit,
        "refundable": refundable,
        "policy_refundable": terms.refundable,
    }
    money.keeper().refund_cancellation(booking, refundable, actor=actor)
    move_to(booking, Status.CANCELLED, actor=actor, reason=reason, payload=payload)
    record_staff_action(
        booking, actor, {"status": [before, booking.status], "reason": [None, reason]}, request
    )
    return booking


# A payer who has started paying keeps the seats at least this long (a slow 3-D Secure or PayPal approval).
PAYMENT_GRACE = dt.timedelta(minutes=15)


@transaction.atomic
def keep_seats_for_payment(booking: Booking) -> Booking:
    """The payer has started paying online: extend the booking's holds to at least ``PAYMENT_GRACE`` from now
    (within their maximum lifetime), so the seats wait for the gateway's answer. Money arriving after the seats
    lapsed anyway is refunded automatically."""
    booking = lock_booking(booking)
    if booking.status not in (Status.ON_HOLD, Status.AWAITING_PAYMENT):
        return booking
    wanted = timezone.now() + PAYMENT_GRACE
    for item in booking.items.select_related("hold").order_by("hold_id"):
        hold = item.hold
        if hold is None or hold.status != Hold.Status.ACTIVE or hold.expires_at >= wanted:
            continue
        latest = hold.created_at + dt.timedelta(seconds=inventory.hold_max_lifetime_seconds())
        seconds = int((min(wanted, latest) - hold.expires_at).total_seconds())
        if seconds > 0:
            try:
                inventory.extend_hold(hold, seconds)
            except DomainError:
                continue  # lapsed meanwhile: the payment, if it comes, is refunded
    booking.expires_at = (
        Hold.objects.filter(booking_item__booking=booking, status=Hold.Status.ACTIVE).aggregate(
            first=Min("expires_at")
        )["first"]
        or booking.expires_at
    )
    booking.save(update_fields=["expires_at", "updated_at"])
    return booking


@transaction.atomic
def mark_refunded(booking: Booking, *, reason: str = "") -> Booking:
    """A cancelled booking whose money has all gone back (the payments app calls this when the last refund
    succeeds)."""
    booking = locked_for(booking, Status.REFUNDED)
    return move_to(booking, Status.REFUNDED, reason=reason or "Fully refunded")


@transaction.atomic
def expire_booking(booking: Booking) -> Booking:
    """An unconfirmed booking whose holds lapsed: its seats are free again. ``hold.expired`` names the booking's
    holds (holds outside bookings expire silently in the inventory: nobody waits for them)."""
    booking = locked_for(booking, Status.EXPIRED)
    lock_seats_of(booking)
    lapsed = []
    for item in booking.items.select_related("hold"):
        if item.hold is None:
            continue
        if item.hold.status == Hold.Status.ACTIVE:
            inventory.release_hold(item.hold)
        lapsed.append(str(item.hold_id))
    publish("hold.expired", booking, {"reference": booking.reference, "holds": lapsed})
    _give_back_promo(booking)
    booking.expires_at = None
    return move_to(booking, Status.EXPIRED, reason="The seats were not confirmed in time.")


@transaction.atomic
def complete_booking(booking: Booking, *, actor: User | None = None) -> Booking:
    """The tour took place (all its departures have ended)."""
    booking = locked_for(booking, Status.COMPLETED)
    last_end = booking.items.aggregate(last=Max("departure__ends_at"))["last"]
    if last_end is None or last_end > timezone.now():
        raise ConflictError("The booking's tour has not ended yet.", code="not_ended")
    return move_to(booking, Status.COMPLETED, actor=actor)


@transaction.atomic
def mark_no_show(booking: Booking, *, actor: User | None = None, reason: str = "") -> Booking:
    """Nobody came. Seats stay sold (the departure has run); nothing is refunded by this."""
    booking = locked_for(booking, Status.NO_SHOW)
    first_start = selectors.first_start(booking)
    if first_start is None or first_start > timezone.now():
        raise ConflictError("A no-show is recorded once the departure has started.", code="not_started")
    return move_to(booking, Status.NO_SHOW, actor=actor, reason=reason)


def expire_lapsed_bookings(now: dt.datetime | None = None, limit: int = 200) -> int:
    """Beat: unconfirmed bookings whose seats lapsed become expired (their holds are released by then or now),
    each in its own transaction: one booking's rows are not held while the next one's are locked (the lock order
    is per booking), and one that fails does not undo the others. Runs with the tenant current but outside a
    transaction (``tenants.context.tenant_bound``)."""
    now = now or timezone.now()
    with tenant_context(require_tenant_id()):
        due = list(
            Booking.objects.filter(status__in=(Status.ON_HOLD, Status.AWAITING_PAYMENT), expires_at__lte=now)
            .order_by("expires_at")
            .values_list("pk", flat=True)[:limit]
        )
    expired = 0
    for pk in due:
        try:
            with tenant_context(require_tenant_id()):
                expire_booking(Booking.objects.get(pk=pk))
            expired += 1
        except IllegalTransition:
            continue  # confirmed or cancelled meanwhile
    return expired
