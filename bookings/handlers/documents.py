"""Consumers that generate the booking's PDFs (invoice, credit note, voucher). Each checks the booking's current
state: events are not ordered, and a consumer may run after the booking moved on."""

from __future__ import annotations

from bookings import documents, invoicing
from bookings.models import Booking
from events.registry import consumer


def _booking(event) -> Booking:
    return Booking.objects.select_related("tenant").get(pk=event.aggregate_id)


@consumer("booking.confirmed", name="bookings.invoice_pdf")
def invoice_pdf(event) -> None:
    """The invoice's PDF. The invoice itself may not exist yet (the invoicing consumer runs in parallel):
    ``issue_invoice`` makes it or returns it."""
    booking = _booking(event)
    invoice = invoicing.current_invoice(booking)
    if invoice is None:
        if booking.status not in invoicing.INVOICEABLE:
            return  # cancelled before it was invoiced: nothing to print
        invoice = invoicing.issue_invoice(booking)
    documents.issue_invoice_document(invoice)


@consumer("booking.confirmed", "booking.modified", name="bookings.voucher")
def voucher(event) -> None:
    """The voucher as the booking is now; a change that does not show on it adds no version."""
    booking = _booking(event)
    if booking.status == Booking.Status.CONFIRMED:
        documents.issue_voucher(booking)


@consumer("booking.modified", name="bookings.reinvoice")
def reinvoice(event) -> None:
    """A confirmed booking re-priced (other units or date): its invoice is replaced by a credit note and a new
    invoice, and both get their PDFs."""
    if event.payload.get("change") not in ("units", "departure"):
        return  # traveller details are not on the invoice
    booking = _booking(event)
    for document in invoicing.reinvoice_after_change(booking, source=f"booking.modified:{event.pk}"):
        documents.issue_invoice_document(document)


@consumer("booking.cancelled", name="bookings.cancellation_credit_note")
def cancellation_credit_note(event) -> None:
    """Credit the invoice by what the cancellation terms give back (``credit`` in the event), once per
    cancellation, never more than is left to credit; and the credit note's PDF."""
    booking = _booking(event)
    invoice = invoicing.current_invoice(booking)
    if invoice is None:
        return  # never invoiced (cancelled before confirmation, or before the invoice was made)
    source = f"booking.cancelled:{event.pk}"
    credit_note = invoice.credit_notes.filter(lines__contains=[{"source": source}]).first()
    if credit_note is None:
        # Credit notes already issued (e.g. a refund) leave less to credit; credit what remains, not a cent more.
        amount = min(
            int(event.payload.get("credit") or 0), invoice.total - invoicing.credited_so_far(invoice)
        )
        if amount <= 0:
            return
        credit_note = invoicing.issue_credit_note(
            invoice,
            amount,
            f"Cancellation of booking {booking.reference}",
            source=source,
            details={"refund_percent": event.payload.get("refund_percent")},
        )
    documents.issue_invoice_document(credit_note)
