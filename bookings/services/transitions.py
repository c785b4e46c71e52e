"""The booking state machine: which status may follow which, and the one place a status changes.

    draft → on_hold → awaiting_payment → confirmed → completed
    plus cancelled, expired, refunded, no_show (see TRANSITIONS)

Each transition is a service (``create``, ``lifecycle``): in one transaction it locks the booking, checks the
transition, moves seats through ``inventory.services``, writes the status history and publishes the outbox event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

from bookings.locks import lock_booking
from bookings.models import Booking, StatusChange
from core.errors import ConflictError
from events.outbox import publish
from inventory.locks import lock_seats
from inventory.models import Hold
from tenants import audit

if TYPE_CHECKING:
    from accounts.models import User

Status = Booking.Status


TRANSITIONS: dict[str, frozenset[str]] = {
    Status.DRAFT: frozenset({Status.ON_HOLD, Status.CANCELLED, Status.EXPIRED}),
    Status.ON_HOLD: frozenset({Status.AWAITING_PAYMENT, Status.CONFIRMED, Status.CANCELLED, Status.EXPIRED}),
    Status.AWAITING_PAYMENT: frozenset({Status.CONFIRMED, Status.CANCELLED, Status.EXPIRED}),
    Status.CONFIRMED: frozenset({Status.COMPLETED, Status.CANCELLED, Status.NO_SHOW, Status.REFUNDED}),
    Status.CANCELLED: frozenset({Status.REFUNDED}),
    Status.COMPLETED: frozenset(),
    Status.EXPIRED: frozenset(),
    Status.REFUNDED: frozenset(),
    Status.NO_SHOW: frozenset(),
}


class IllegalTransition(ConflictError):
    code = "illegal_transition"

    def __init__(self, booking: Booking, to: str):
        super().__init__(
            f"Booking {booking.reference} is {booking.get_status_display().lower()}; it cannot become "
            f"{Status(to).label.lower()}.",
            fields={"status": [booking.status]},
        )


def actor_label(actor: User | None) -> str:
    return str(actor) if actor is not None else "system"


def locked_for(booking: Booking, to: str) -> Booking:
    """The booking locked, refused up front (nothing changed yet) if it may not become ``to``."""
    booking = lock_booking(booking)
    check_transition(booking, to)
    return booking


def check_transition(booking: Booking, to: str) -> None:
    if to not in TRANSITIONS[booking.status]:
        raise IllegalTransition(booking, to)


def lock_seats_of(booking: Booking) -> None:
    """Lock the booking's holds, then their departures, before moving any seat (two multi-item bookings on the
    same departures, confirmed or cancelled at once, would otherwise each lock one departure and wait)."""
    lock_seats(
        Hold.objects.filter(booking_item__booking=booking),
        booking.items.values_list("departure_id", flat=True),
    )


def move_to(
    booking: Booking, to: str, *, actor: User | None = None, reason: str = "", payload: dict | None = None
) -> Booking:
    """The one place a status changes: the transition is checked, the history written, the event published."""
    check_transition(booking, to)
    StatusChange.objects.create(
        booking=booking,
        from_status=booking.status,
        to_status=to,
        reason=reason,
        actor_label=actor_label(actor),
    )
    booking.status = to
    booking.save(
        update_fields=[
            "status",
            "confirmed_at",
            "cancelled_at",
            "expires_at",
            "cancellation_charge",
            "updated_at",
        ]
    )
    publish(f"booking.{to}", booking, {"reference": booking.reference, "status": to, **(payload or {})})
    return booking


def record_staff_action(
    booking: Booking, actor: User | None, changes: dict, request: HttpRequest | None = None
) -> None:
    """Audit a change a person asked for over HTTP — in the back office or through the API, staff or an agency's
    booker — the same way whichever they used. The system's own transitions (a payment confirming a booking, seats
    lapsing) are in the status history."""
    if request is not None and getattr(actor, "pk", None):
        audit.record(audit.Action.CHANGE, actor=actor, target=booking, changes=changes, request=request)
