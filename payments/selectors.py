"""Reads of payments."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Sum

from bookings.models import Booking
from payments.models import Payment, Refund


@dataclass(frozen=True)
class Ledger:
    """A booking's money as the payment rows tell it (minor units of ``currency``). ``Booking.paid`` is kept equal
    to ``paid - refunded`` by the services; this is the account that explains it."""

    currency: str
    total: int
    paid: int
    refunded: int

    @property
    def net_paid(self) -> int:
        return self.paid - self.refunded

    @property
    def balance(self) -> int:
        return self.total - self.net_paid


def ledger(booking: Booking) -> Ledger:
    """Succeeded payments count as paid, succeeded refunds as refunded (pending ones are neither yet)."""
    paid = (
        Payment.objects.filter(booking=booking, status=Payment.Status.SUCCEEDED).aggregate(
            paid=Sum("amount")
        )["paid"]
        or 0
    )
    refunded = (
        Refund.objects.filter(booking=booking, status=Refund.Status.SUCCEEDED).aggregate(
            refunded=Sum("amount")
        )["refunded"]
        or 0
    )
    return Ledger(currency=booking.currency, total=booking.total, paid=paid, refunded=refunded)


def refunds_of(booking: Booking) -> list[Refund]:
    return list(Refund.objects.filter(booking=booking).select_related("payment").order_by("created_at", "id"))


def payments_of(booking: Booking) -> list[Payment]:
    """Every attempt, oldest first (failed and cancelled ones included: they explain what the customer saw)."""
    return list(
        Payment.objects.filter(booking=booking).select_related("recorded_by").order_by("created_at", "id")
    )
