"""Consumers that queue the booking's emails (sent by ``bookings.tasks.send_notification``). The key is the
event id, so a redelivered event queues nothing; events are not ordered, so an email that no longer fits the
booking's state is not queued (and ``notifications.send`` checks again before sending)."""

from __future__ import annotations

import logging

from bookings import notifications
from bookings.models import Booking, Notification
from events.registry import consumer

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
