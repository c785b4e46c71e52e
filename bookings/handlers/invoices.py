"""Consumer that invoices a confirmed booking."""

from __future__ import annotations

from bookings import invoicing
from bookings.models import Booking
from events.registry import consumer


@consumer("booking.confirmed", name="bookings.issue_invoice")
def issue_invoice(event) -> None:
    booking = Booking.objects.get(pk=event.aggregate_id)
    if booking.status in invoicing.INVOICEABLE:
        invoicing.issue_invoice(booking)
