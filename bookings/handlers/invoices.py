"""Consumers that keep a booking's invoices right. Each first brings the invoices up to date with the booking as
it is now (``invoicing.bring_up_to_date``): events arrive in any order, so whichever runs first issues what is
missing and the others find nothing to do. PDFs are made elsewhere, from ``invoice.issued``."""

from __future__ import annotations

from bookings.models import Booking
from bookings.services import invoicing
from events.registry import consumer


def _booking(event) -> Booking:
    return Booking.objects.get(pk=event.aggregate_id)


@consumer("booking.confirmed", name="bookings.issue_invoice")
def issue_invoice(event) -> None:
    invoicing.bring_up_to_date(_booking(event), source=f"booking.confirmed:{event.pk}")


@consumer("booking.modified", name="bookings.reinvoice")
def reinvoice(event) -> None:
    """A re-priced booking (other units or date): its invoice is credited in full and a new one issued. Any
    change runs it: one that is not on the invoice (traveller details) finds the invoice up to date."""
    invoicing.bring_up_to_date(_booking(event), source=f"booking.modified:{event.pk}")


@consumer("booking.cancelled", name="bookings.cancellation_credit_note")
def cancellation_credit_note(event) -> None:
    """The invoice, if the booking was confirmed (issued now if its consumer has not run yet), credited down to
    the cancellation charge (``charge`` in the event), once per cancellation."""
    invoicing.credit_cancellation(
        _booking(event),
        source=f"booking.cancelled:{event.pk}",
        charge=int(event.payload.get("charge") or 0),
        details={"refund_percent": event.payload.get("refund_percent")},
    )
