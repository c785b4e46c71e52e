"""Changing a sold or held booking: another date of the same tour, or other units on the same date. Seats are
swapped atomically, the item re-priced (keeping the promo code it was sold with), the agency's credit checked again
and the difference announced in ``booking.modified``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from django.db import transaction
from django.db.models import Min
from django.http import HttpRequest
from django.utils import timezone

from bookings import money
from bookings.locks import lock_booking
from bookings.models import Booking, BookingItem
from bookings.services.create import pricing_channel
from bookings.services.credit import check_credit
from bookings.services.transitions import Status, actor_label, record_staff_action
from bookings.services.travellers import unit_allowance
from core.errors import ConflictError, DomainError
from core.ids import uuid7, valid_uuids
from core.locking import lock_rows
from events.outbox import publish
from inventory import services as inventory
from inventory.locks import lock_seats
from inventory.models import Departure, Hold
from partners.locks import lock_agency
from tours import pricing
from tours.models import Channel, PromoRedemption

if TYPE_CHECKING:
    from accounts.models import User

CHANGEABLE = (Status.ON_HOLD, Status.AWAITING_PAYMENT, Status.CONFIRMED)

MOVABLE = CHANGEABLE  # the name other modules know


def _locked_for_change(booking: Booking) -> Booking:
    """The booking locked, and for an on-account booking its agency first: a change may need the agency's
    credit (``core.locking.LOCK_ORDER``: an agency before its bookings, both before any seat). An on-account
    booking always has its agency (CHECK booking_on_account_needs_agency)."""
    if booking.on_account:
        lock_agency(cast(uuid.UUID, booking.agency_id))
    return lock_booking(booking)


def _changeable(booking: Booking, item: BookingItem | uuid.UUID, verb: str) -> BookingItem:
    """The booking (locked by the caller) may still change, and ``item`` is one of its items, locked too."""
    if booking.status not in CHANGEABLE:
        raise ConflictError(
            f"Booking {booking.reference} is {booking.get_status_display().lower()}; it cannot be {verb}.",
            code="illegal_transition",
            fields={"status": [booking.status]},
        )
    item_id = next(iter(valid_uuids([getattr(item, "pk", item)])), None)
    locked = (
        next(
            iter(
                lock_rows(
                    BookingItem.objects.select_related("hold", "departure").filter(
                        pk=item_id, booking=booking
                    )
                )
            ),
            None,
        )
        if item_id
        else None
    )
    if locked is None:
        raise DomainError.for_field("This item is not part of the booking.", "item")
    return locked


def _redeemed_promo_code(booking: Booking) -> str | None:
    """The promo code this booking used (its redemption is still counted), if any."""
    return (
        PromoRedemption.objects.filter(reference=str(booking.pk), released_at__isnull=True)
        .values_list("promo__code", flat=True)
        .first()
    )


def _requote(
    booking: Booking, item: BookingItem, departure: Departure, units: dict[str, int]
) -> pricing.Quote:
    """A fresh price for changed seats, for the same buyer. A booking keeps the promo code it was sold with: its
    one use is already counted (the redemption stays, no new use is taken) and the code's terms apply to the new
    seats; a code that can no longer be applied refuses the change rather than silently dropping the discount."""
    code = item.quote.get("promo_code") if _redeemed_promo_code(booking) else None
    try:
        quote = pricing.quote(
            departure.option,
            departure,
            units,
            pricing_channel(booking.channel),
            agency=booking.agency,
            currency=booking.currency,
            promo_code=code,
            promo_redeemed=code is not None,
        )
    except DomainError as error:
        if code is None or not error.code.startswith("promo_"):
            raise
        raise ConflictError(
            f"The booking's promo code {code} no longer applies ({error.message}); the booking cannot be "
            "re-priced with it. Ask the operator to change it.",
            code="promo_no_longer_valid",
            fields={"promo_code": [error.message]},
        ) from None
    return quote


def _lock_departures_in_order(old: Hold | None, departure: Departure) -> None:
    """Lock the old hold, then both departure rows in id order, before moving seats between them: two bookings
    moving in opposite directions at once would otherwise each hold one departure and wait for the other. (The
    hold first, as the expiry sweep does: hold, then its departure.)"""
    if old is None:
        lock_seats(Hold.objects.none(), [departure.pk])
    else:
        lock_seats(Hold.objects.filter(pk=old.pk), [departure.pk, old.departure_id])


def _swap_hold(
    booking: Booking, item: BookingItem, departure: Departure, units: dict[str, int], purpose: str
) -> Hold:
    """Give back the item's seats and take ``units`` on ``departure`` instead, sold if they were sold.

    Old seats go first so that a smaller or larger change on the same departure can reuse them. Nobody sees the
    moment in between: the first UPDATE of a departure row locks it until our commit, and a refusal to take the
    new seats (409 not_enough_seats, …) rolls the whole change back, old seats included. An unconfirmed booking's
    new hold lapses when the old one would have: changing a booking buys no time."""
    now = timezone.now()
    old = item.hold
    _lock_departures_in_order(old, departure)
    sold = booking.status == Status.CONFIRMED
    ttl = None
    if sold:
        if old is not None and old.status == Hold.Status.CONVERTED:
            inventory.release_sold_hold(old)
        elif old is not None and old.status == Hold.Status.ACTIVE:
            inventory.release_hold(old)
    else:
        if old is None or old.status != Hold.Status.ACTIVE or old.expires_at <= now:
            raise ConflictError(
                f"The seats of booking {booking.reference} have lapsed; it cannot be changed.",
                code="hold_expired",
            )
        ttl = max(1, int((old.expires_at - now).total_seconds()))
        inventory.release_hold(old)
    channel = Channel.TRADE if booking.agency_id else Channel.RETAIL
    new = inventory.place_hold(
        departure, units, channel, f"{purpose}:{uuid7()}", agency=booking.agency, ttl=ttl
    )
    if sold:
        inventory.convert_hold(new)
    return new


def _save_changed_item(
    booking: Booking, item: BookingItem, departure: Departure, hold: Hold, quote: pricing.Quote
) -> int:
    """Store the item's new seats and price; returns the price difference (added to the booking's total)."""
    difference = quote.total.amount - item.total
    item.departure, item.option, item.hold = departure, departure.option, hold
    item.units, item.seats = hold.units, hold.seats
    item.quote, item.total = quote.as_snapshot(), quote.total.amount
    item.save(update_fields=["departure", "option", "hold", "units", "seats", "quote", "total"])
    booking.total += difference
    if booking.status != Status.CONFIRMED:
        booking.expires_at = Hold.objects.filter(
            booking_item__booking=booking, status=Hold.Status.ACTIVE
        ).aggregate(first=Min("expires_at"))["first"]
    if booking.on_account and difference > 0:
        # A confirmed booking already counts in what the agency owes (at its old total): only the increase needs
        # credit. An unconfirmed one is checked in full now, and again when it is confirmed.
        check_credit(booking, difference if booking.status == Status.CONFIRMED else booking.balance)
    booking.save(update_fields=["total", "expires_at", "updated_at"])
    keeper = money.keeper()
    keeper.replan(booking)
    keeper.refund_overpayment(booking)  # paid more than the new price (fewer travellers, a cheaper date)
    return difference


def _not_started(item: BookingItem, verb: str) -> None:
    if item.departure.starts_at <= timezone.now():
        raise ConflictError(
            f"The departure of {item.departure.starts_at:%Y-%m-%d %H:%M} UTC has started; the booking cannot be "
            f"{verb}.",
            code="departure_started",
        )


@transaction.atomic
def move_departure(
    booking: Booking,
    item: BookingItem | uuid.UUID,
    departure: Departure,
    *,
    actor: User | None = None,
    reason: str = "",
    request: HttpRequest | None = None,
) -> Booking:
    """Move one item's travellers to another departure of the same tour: the new seats are taken and the old ones
    given back in one transaction (never both, never neither, as anyone else sees it); the item is re-priced and
    the difference announced in ``booking.modified``."""
    booking = _locked_for_change(booking)
    item = _changeable(booking, item, "moved")
    if departure.pk == item.departure_id:
        raise DomainError.for_field("The booking is already on this departure.", "departure")
    if departure.tour_id != item.departure.tour_id:
        raise DomainError.for_field(
            "A booking moves to another date of the same tour; book the other tour instead.", "departure"
        )
    _not_started(item, "moved")
    moved_from, total_before = str(item.departure), booking.total
    quote = _requote(booking, item, departure, item.units)
    hold = _swap_hold(booking, item, departure, item.units, "move")
    difference = _save_changed_item(booking, item, departure, hold, quote)
    record_staff_action(
        booking,
        actor,
        {"departure": [moved_from, str(departure)], "total": [total_before, booking.total]},
        request,
    )
    publish(
        "booking.modified",
        booking,
        {
            "reference": booking.reference,
            "change": "departure",
            "item": str(item.pk),
            "moved_to": str(departure.pk),
            "difference": difference,
            "reason": reason,
            "by": actor_label(actor),
        },
    )
    return booking


def _clean_units(units: object) -> dict[str, int]:
    if not isinstance(units, dict) or not all(isinstance(code, str) for code in units):
        raise DomainError.for_field('Give the new count per unit type, e.g. {"adult": 2}.', "units")
    for code, count in units.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise DomainError(
                f"{code}: a whole number, 0 or more.",
                code="invalid",
                fields={f"units.{code}": ["A whole number, 0 or more."]},
            )
    cleaned = {code: count for code, count in units.items() if count}
    if not cleaned:
        raise DomainError.for_field("A booking keeps at least one traveller; cancel it instead.", "units")
    return cleaned


@transaction.atomic
def modify_booking(
    booking: Booking,
    item: BookingItem | uuid.UUID,
    units: dict[str, int],
    *,
    remove_travellers: Sequence[uuid.UUID | str] = (),
    actor: User | None = None,
    reason: str = "",
) -> Booking:
    """Change the units of one item on the same departure (travellers join or leave): its seats are swapped for
    the new count in one transaction, the item re-priced, the difference announced in ``booking.modified``.

    Named travellers must fit the new units: where a unit type's count drops below the travellers named for it,
    the ones leaving are listed in ``remove_travellers`` (they are deleted) or the change is refused. Any named
    traveller of the booking may be listed (their seat stays, unnamed, if its unit type does not drop)."""
    booking = _locked_for_change(booking)
    item = _changeable(booking, item, "changed")
    _not_started(item, "changed")
    new_units = _clean_units(units)
    old_units = dict(item.units)
    if new_units == old_units:
        raise DomainError.for_field("These are the units booked already.", "units")

    if isinstance(remove_travellers, (str, bytes)):
        raise DomainError.for_field("Give a list of traveller ids.", "remove_travellers")
    leaving = [str(traveller_id) for traveller_id in remove_travellers]
    leaving_ids = set(valid_uuids(leaving))
    if len(valid_uuids(leaving)) != len(leaving):
        raise DomainError.for_field("Travellers to remove are given by their ids.", "remove_travellers")
    travellers = list(booking.travellers.all())
    unknown = leaving_ids - {str(traveller.pk) for traveller in travellers}
    if unknown:
        raise DomainError.for_field(
            f"Traveller {sorted(unknown)[0]} is not on this booking.", "remove_travellers"
        )
    other_items = [other for other in booking.items.all() if other.pk != item.pk]
    allowed = unit_allowance(other_items)
    for code, count in new_units.items():
        allowed[code] = allowed.get(code, 0) + count
    staying: dict[str, int] = {}
    for traveller in travellers:
        if str(traveller.pk) not in leaving_ids:
            staying[traveller.unit_code] = staying.get(traveller.unit_code, 0) + 1
    for code, named in sorted(staying.items()):
        if named > allowed.get(code, 0):
            message = (
                f"{named} {code!r} traveller(s) are named but {allowed.get(code, 0)} {code!r} would remain: "
                f"say which {named - allowed.get(code, 0)} leave (remove_travellers)."
            )
            raise DomainError.for_field(message, "remove_travellers")

    quote = _requote(booking, item, item.departure, new_units)
    hold = _swap_hold(booking, item, item.departure, new_units, "modify")
    difference = _save_changed_item(booking, item, item.departure, hold, quote)
    if leaving_ids:
        booking.travellers.filter(pk__in=leaving_ids).delete()
    publish(
        "booking.modified",
        booking,
        {
            "reference": booking.reference,
            "change": "units",
            "item": str(item.pk),
            "units": {"from": old_units, "to": item.units},
            "removed_travellers": sorted(leaving_ids),
            "difference": difference,
            "reason": reason,
            "by": actor_label(actor),
        },
    )
    return booking
