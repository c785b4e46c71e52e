"""Reads of bookings."""

from __future__ import annotations

from bookings.models import Booking
from core.pii.fields import blind_lookup


def find_booking(reference: str, email: str) -> Booking | None:
    """ "Find my booking": the reference and the lead customer's email must both match (the email through its
    blind index; the reference alone is never enough)."""
    reference = (reference or "").strip().upper()
    if not reference or not (email or "").strip():
        return None
    return Booking.objects.filter(
        reference=reference, **blind_lookup(Booking, "lead_email_index", email)
    ).first()
