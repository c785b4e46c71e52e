"""The payments app's answers to a booking's questions about money (``bookings.money``), registered when Django
starts (``PaymentsConfig.ready``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bookings.models import Booking, BookingItem
from bookings.money import AmountDue
from core.ids import uuid7
from payments.models import Refund
from payments.services import refunds, schedules

if TYPE_CHECKING:
    from accounts.models import User


class PaymentsKeepTheMoney:
    def plan(self, booking: Booking, items: Sequence[BookingItem]) -> None:
        schedules.create_schedule(booking, list(items))

    def replan(self, booking: Booking) -> None:
        schedules.replan(booking)

    def due_now(self, booking: Booking) -> int:
        return schedules.amount_due_now(booking)

    def settled(self, booking: Booking) -> int:
        return schedules.settled(booking)

    def unpaid(self, booking: Booking, today: dt.date) -> list[AmountDue]:
        return [
            AmountDue(
                at_booking=state.installment.sequence == 1,
                due_on=state.installment.due_on,
                amount=state.outstanding,
            )
            for state in schedules.installment_states(booking, today)
            if not state.paid
        ]

    def refund_cancellation(self, booking: Booking, refundable: int, *, actor: User | None) -> None:
        _give_back(
            booking,
            refundable,
            kind=Refund.Kind.CANCELLATION,
            reason=f"Cancellation of booking {booking.reference}",
            request_key=f"cancellation-{booking.pk}",
            actor=actor,
        )

    def refund_overpayment(self, booking: Booking) -> None:
        _give_back(
            booking,
            booking.paid - booking.total,
            kind=Refund.Kind.SURPLUS,
            reason=f"Booking {booking.reference} now costs less than was paid",
            request_key=f"reduced-{uuid7()}",
            actor=None,
        )


def _give_back(
    booking: Booking, owed_back: int, *, kind: str, reason: str, request_key: str, actor: User | None
) -> None:
    """Refund what of ``owed_back`` is not on its way back already, within what can still be refunded (gateway
    parts are sent after commit). A pending refund is still counted in ``paid``: it is part of what is owed back,
    not extra."""
    amount = min(owed_back - refunds.pending_total(booking), refunds.refundable(booking))
    if amount > 0:
        refunds.request_refund_locked(
            booking, amount=amount, reason=reason, request_key=request_key, actor=actor, kind=kind
        )
