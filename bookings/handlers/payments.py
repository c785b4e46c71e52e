"""Consumer that confirms a booking once its payments leave nothing due now.

Events are not ordered and the booking may have moved on since the payment (cancelled, expired, confirmed by
another payment's event): the booking's current state decides, and ``confirm_booking`` checks it again under the
booking's row lock.
"""

from __future__ import annotations

import logging

from bookings import services
from bookings.models import Booking
from core.errors import ConflictError
from events.registry import consumer
from payments import refunds
from payments.services import amount_due_now

logger = logging.getLogger(__name__)

S = Booking.Status
AWAITING_MONEY = (S.ON_HOLD, S.AWAITING_PAYMENT)
ENDED = (S.CANCELLED, S.EXPIRED, S.REFUNDED)


@consumer("payment.processed", name="bookings.confirm_when_paid")
def confirm_when_paid(event) -> None:
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
    if booking.status not in AWAITING_MONEY or amount_due_now(booking) > 0:
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
