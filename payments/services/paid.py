"""``Booking.paid``: what a booking has received, net of the refunds that went through. It changes only here, by
the payment services, with the booking's row locked by the caller."""

from __future__ import annotations

from bookings.models import Booking


def adjust_paid(booking: Booking, amount: int) -> None:
    """Count ``amount`` minor units more as paid (less, when it is negative: money went back) and save it."""
    booking.paid += amount
    booking.save(update_fields=["paid", "updated_at"])
