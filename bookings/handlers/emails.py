"""Consumers that queue the booking's emails (sent by ``bookings.tasks.send_notification``). The key is the
event id, so a redelivered event queues nothing; events are not ordered, so an email that no longer fits the
booking's state is not queued (and ``notifications.send`` checks again before sending)."""

from __future__ import annotations

import logging

from bookings import notifications
from bookings.models import Booking, Notification
from events.registry import consumer
from payments.models import Refund

logger = logging.getLogger(__name__)
Kind = Notification.Kind


def _queue_for(event, kind: str) -> None:
    if event.aggregate_type != Booking._meta.label_lower:
        logger.warning("%s is about a %s, not a booking: no email", event.name, event.aggregate_type)
        return
    booking = Booking.objects.get(pk=event.aggregate_id)
    reason = notifications.reason_not_to_send(booking, kind)
    if reason:
        logger.info("no %s email for %s after %s: %s", kind, booking.reference, event.name, reason)
        return
    notifications.queue(booking, kind, str(event.pk))


@consumer("booking.confirmed", name="bookings.email_confirmation")
def email_confirmation(event) -> None:
    _queue_for(event, Kind.CONFIRMATION)


@consumer("payment.processed", name="bookings.email_receipt")
def email_receipt(event) -> None:
    _queue_for(event, Kind.RECEIPT)


@consumer("booking.awaiting_payment", name="bookings.email_payment_due")
def email_payment_due(event) -> None:
    _queue_for(event, Kind.PAYMENT_DUE)


@consumer("booking.modified", name="bookings.email_modified")
def email_modified(event) -> None:
    _queue_for(event, Kind.MODIFIED)


@consumer("booking.cancelled", name="bookings.email_cancellation")
def email_cancellation(event) -> None:
    _queue_for(event, Kind.CANCELLATION)


@consumer("payment.installment_failed", name="bookings.email_installment_failed")
def email_installment_failed(event) -> None:
    # The attempt before the last one is a final notice; earlier ones say when we try again.
    kind = Kind.FINAL_NOTICE if event.payload.get("final_notice") else Kind.PAYMENT_FAILED
    _queue_for(event, kind)


@consumer("payment.installment_upcoming", name="bookings.email_installment_upcoming")
def email_installment_upcoming(event) -> None:
    _queue_for(event, Kind.UPCOMING_PAYMENT)


@consumer("payment.refunded", name="bookings.email_refund")
def email_refund(event) -> None:
    # An agency's booking too: the money goes back to whoever paid, and the agency hears of it at its address.
    if event.payload.get("kind") == Refund.Kind.REVERSAL:
        return  # taken back by the gateway in a dispute: nothing we refunded; staff handle it
    _queue_for(event, Kind.REFUND)


# payment.installment_unpaid needs no email: when the terms cancel the booking, the cancellation email goes; when
# they flag it, staff see it in the back office. payment.failed (a checkout attempt) is shown on the page.
