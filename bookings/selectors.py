"""Reads of bookings."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo

from django.db.models import Exists, Min, OuterRef, QuerySet
from django.utils import timezone

from bookings.models import Booking, BookingItem
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


# Periods of departure the back office's list offers (relative to now).
DEPARTURE_PERIODS = {"next7": "Next 7 days", "next30": "Next 30 days", "past": "Departed"}


def filter_bookings(
    bookings: QuerySet[Booking],
    *,
    status: str | None = None,
    channel: str | None = None,
    agency_id: uuid.UUID | None = None,
    reference: str | None = None,
    agent_reference: str | None = None,
    departs_in: str | None = None,
    departs_from: dt.date | None = None,
    departs_to: dt.date | None = None,
    created_from: dt.date | None = None,
    created_to: dt.date | None = None,
    time_zone: str = "UTC",
) -> QuerySet[Booking]:
    """The booking lists' filters (the back office's and the API's), each applied when given: a departure in a
    period (``DEPARTURE_PERIODS``) or between two local dates (inclusive, the tour's dates), made between two dates
    (inclusive, in ``time_zone``), and exact status, channel, agency and references."""
    for name, value in (("status", status), ("channel", channel), ("agency_id", agency_id)):
        if value:
            bookings = bookings.filter(**{name: value})
    if agent_reference:
        bookings = bookings.filter(agent_reference=agent_reference)
    if reference:
        bookings = bookings.filter(reference=reference.strip().upper())
    items = BookingItem.objects.filter(booking=OuterRef("pk"))
    if departs_in:
        now = timezone.now()
        periods = {
            "next7": {
                "departure__starts_at__gte": now,
                "departure__starts_at__lt": now + dt.timedelta(days=7),
            },
            "next30": {
                "departure__starts_at__gte": now,
                "departure__starts_at__lt": now + dt.timedelta(days=30),
            },
            "past": {"departure__starts_at__lt": now},
        }
        bookings = bookings.filter(Exists(items.filter(**periods[departs_in])))
    if departs_from or departs_to:
        bounds = {}
        if departs_from:
            bounds["departure__local_date__gte"] = departs_from
        if departs_to:
            bounds["departure__local_date__lte"] = departs_to
        bookings = bookings.filter(Exists(items.filter(**bounds)))
    zone = zoneinfo.ZoneInfo(time_zone)
    if created_from:
        bookings = bookings.filter(
            created_at__gte=dt.datetime.combine(created_from, dt.time.min, tzinfo=zone)
        )
    if created_to:
        next_day = created_to + dt.timedelta(days=1)
        bookings = bookings.filter(created_at__lt=dt.datetime.combine(next_day, dt.time.min, tzinfo=zone))
    return bookings
