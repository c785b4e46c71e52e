"""Consumers of booking events (see events.registry). They run once per event, in a worker, and check the
booking's current state: events are not ordered."""

from __future__ import annotations

from bookings import invoicing
from bookings.models import Booking
from events.registry import consumer


@consumer("booking.confirmed", name="bookings.issue_invoice")
def issue_invoice(event) -> None:
    booking = Booking.objects.get(pk=event.aggregate_id)
    if booking.status in invoicing.INVOICEABLE:
        invoicing.issue_invoice(booking)
