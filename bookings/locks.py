"""Row locks on bookings (the mechanism and the global lock order are ``core.locking``'s)."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from bookings.models import Booking
from core.locking import lock_row, lock_rows


def lock_booking(booking: Booking | uuid.UUID) -> Booking:
    """The booking row, locked and fresh. Every change of a booking — its status, what it costs, what was paid
    and refunded, its invoices — is decided under it, so two of them are decided one after the other."""
    return lock_row(Booking, pk=booking.pk if isinstance(booking, Booking) else booking)


def lock_bookings(bookings: QuerySet[Booking]) -> list[Booking]:
    """These bookings locked, in primary-key order."""
    return lock_rows(bookings)
