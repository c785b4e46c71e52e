"""Consumers that generate the booking's PDFs (invoice, credit note, voucher), each in its own transaction after
the change it follows: rendering takes a few hundred milliseconds and must not hold the locks of that change."""

from __future__ import annotations

from bookings.models import Booking, Invoice
from bookings.services import documents, notifications
from core.errors import ConflictError
from events.registry import consumer


@consumer("invoice.issued", name="bookings.invoice_pdf")
def invoice_pdf(event) -> None:
    """The PDF of an invoice or credit note, once (published in the transaction that numbered it, so each one
    gets its PDF whichever consumer issued it)."""
    documents.issue_invoice_document(Invoice.objects.get(pk=event.payload["invoice"]))


@consumer("booking.confirmed", "booking.modified", name="bookings.voucher")
def voucher(event) -> None:
    """The voucher as the booking is now; a change that does not show on it adds no version. Events are not
    ordered: a booking no longer confirmed gets none."""
    booking = Booking.objects.only("status").get(pk=event.aggregate_id)
    if booking.status != Booking.Status.CONFIRMED:
        return
    try:
        documents.issue_voucher(booking)
        notifications.send_waiting_confirmations(booking)
    except ConflictError as refused:
        if refused.code != "not_confirmed":
            raise
        # cancelled while the voucher was being made: it no longer travels, no voucher
