"""Consumers that queue the booking's emails (sent by ``bookings.tasks.send_notification``). The key is the
event id, so a redelivered event queues nothing; events are not ordered, so an email that no longer fits the
booking's state is not queued (and ``notifications.send`` checks again before sending). Emails about money are
queued by the payments app's consumers."""

from __future__ import annotations

from bookings.models import Notification
from bookings.services import notifications
from events.registry import consumer

Kind = Notification.Kind


@consumer("booking.confirmed", name="bookings.email_confirmation")
def email_confirmation(event) -> None:
    notifications.queue_for_event(event, Kind.CONFIRMATION)


@consumer("booking.awaiting_payment", name="bookings.email_payment_due")
def email_payment_due(event) -> None:
    notifications.queue_for_event(event, Kind.PAYMENT_DUE)


@consumer("booking.modified", name="bookings.email_modified")
def email_modified(event) -> None:
    notifications.queue_for_event(event, Kind.MODIFIED)


@consumer("booking.cancelled", name="bookings.email_cancellation")
def email_cancellation(event) -> None:
    notifications.queue_for_event(event, Kind.CANCELLATION)
