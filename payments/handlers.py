"""Consumers of payment events: a booking is confirmed once nothing is due, the payer hears of money received,
failed or due and of money given back, and a refund given as a gesture gets its credit note.

Consumer names are identifiers stored with the events they processed: they keep the names they were first given
(when these consumers lived in the bookings app). Events are not ordered, so each consumer checks the booking as it
is now.
"""

from __future__ import annotations

import logging

from bookings import services
from bookings.models import Booking, Notification
from bookings.services import invoicing, notifications
from core.errors import ConflictError
from events.registry import consumer
from payments.models import Refund
from payments.services import refunds, schedules

logger = logging.getLogger(__name__)

Kind = Notification.Kind
Status = Booking.Status
AWAITING_MONEY = (Status.ON_HOLD, Status.AWAITING_PAYMENT)
ENDED = (Status.CANCELLED, Status.EXPIRED, Status.REFUNDED)


@consumer("payment.processed", name="bookings.confirm_when_paid")
def confirm_when_paid(event) -> None:
    """The booking may have moved on since the payment (cancelled, expired, confirmed by another payment's event):
    its current state decides, and ``confirm_booking`` checks it again under the booking's row lock."""
    booking = Booking.objects.get(pk=event.aggregate_id)
    if booking.status in ENDED:
        # Money for a booking no longer sold: the cancellation refunds what its terms give back and a gateway
        # payment arriving later is refunded as it is recorded; paying a cancellation charge is expected. Anything
        # else is for staff to look at.
        if booking.paid - refunds.pending_total(booking) <= booking.cancellation_charge:
            return
        logger.warning(
            "payment %s of %s %s received for %s booking %s beyond its cancellation charge",
            event.payload.get("payment"),
            event.payload.get("amount"),
            event.payload.get("currency"),
            booking.status,
            booking.reference,
        )
        return
    if booking.status not in AWAITING_MONEY or schedules.amount_due_now(booking) > 0:
        return  # confirmed already, or a part payment: the next payment's event confirms it
    try:
        services.confirm_booking(booking, reason="Paid")
    except services.IllegalTransition:
        return  # cancelled, expired or confirmed meanwhile
    except ConflictError as error:
        # Paid but not confirmable (e.g. its seats lapsed before the money came): retrying cannot change that.
        logger.error(
            "booking %s is paid but could not be confirmed (%s): %s",
            booking.reference,
            error.code,
            error.message,
        )


@consumer("payment.processed", name="bookings.email_receipt")
def email_receipt(event) -> None:
    notifications.queue_for_event(event, Kind.RECEIPT)


@consumer("payment.installment_failed", name="bookings.email_installment_failed")
def email_installment_failed(event) -> None:
    # The attempt before the last one is a final notice; earlier ones say when we try again.
    kind = Kind.FINAL_NOTICE if event.payload.get("final_notice") else Kind.PAYMENT_FAILED
    notifications.queue_for_event(event, kind)


@consumer("payment.installment_upcoming", name="bookings.email_installment_upcoming")
def email_installment_upcoming(event) -> None:
    notifications.queue_for_event(event, Kind.UPCOMING_PAYMENT)


@consumer("payment.refunded", name="bookings.email_refund")
def email_refund(event) -> None:
    # An agency's booking too: the money goes back to whoever paid, and the agency hears of it at its address.
    if event.payload.get("kind") == Refund.Kind.REVERSAL:
        return  # taken back by the gateway in a dispute: nothing we refunded; staff handle it
    notifications.queue_for_event(event, Kind.REFUND)


# payment.installment_unpaid needs no email: when the terms cancel the booking, the cancellation email goes; when
# they flag it, staff see it in the back office. payment.failed (a checkout attempt) is shown on the page.


@consumer("payment.refunded", name="bookings.goodwill_credit_note")
def goodwill_credit_note(event) -> None:
    """Money given back as a gesture lowers what the customer is charged: the invoice is credited by as much
    (at most what is left to credit), once per refund. A cancellation's refund is covered by the cancellation's
    own credit note, and a surplus (paid twice, or for a lapsed booking) was never invoiced."""
    if event.payload.get("kind") not in Refund.Kind.gestures():
        return
    booking = Booking.objects.get(pk=event.aggregate_id)
    invoicing.bring_up_to_date(booking, source=f"payment.refunded:{event.pk}")
    invoice = invoicing.current_invoice(booking)
    if invoice is None:
        return  # not invoiced (never confirmed): nothing to credit
    amount = min(int(event.payload["amount"]), invoice.total - invoicing.credited_so_far(invoice))
    if amount > 0:
        invoicing.issue_credit_note(
            invoice,
            amount,
            (
                f"Goodwill refund on booking {booking.reference}"
                if event.payload.get("kind") == Refund.Kind.GOODWILL
                else f"Refund on booking {booking.reference} (made at the payment provider)"
            ),
            source=f"payment.refunded:{event.payload['refund']}",
        )
