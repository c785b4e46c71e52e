"""Reads of bookings."""

from __future__ import annotations

import datetime as dt

from django.db.models import Min

from bookings.models import Booking
from core.pii.fields import blind_lookup
from tenants.context import require_tenant_id


def find_booking(reference: str, email: str) -> Booking | None:
    """ "Find my booking": the reference and the lead customer's email must both match (the email through its
    blind index; the reference alone is never enough)."""
    reference = (reference or "").strip().upper()
    if not reference or not (email or "").strip():
        return None
    return Booking.objects.filter(
        reference=reference, **blind_lookup(Booking, "lead_email_index", email, tenant_id=require_tenant_id())
    ).first()


def first_start(booking: Booking) -> dt.datetime | None:
    """When the booking's first departure starts (UTC); None for a booking without items."""
    return booking.items.aggregate(first=Min("departure__starts_at"))["first"]
