"""What a booking needs to know about its money, asked of the app that keeps the money.

Bookings do not import payments: payments knows bookings (it records money against them), so the dependency runs
one way. The booking's services still need a few answers from the money side inside their own transaction — what is
due before a booking may be confirmed, that a new booking gets its payment schedule, what goes back when it is
cancelled or costs less — and they ask them here. The payments app registers its ``MoneyKeeper`` when Django starts
(``PaymentsConfig.ready``); nothing else does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from django.core.exceptions import ImproperlyConfigured

from bookings.models import Booking, BookingItem

if TYPE_CHECKING:
    from accounts.models import User


@dataclass(frozen=True)
class AmountDue:
    """A part of the price not paid yet: due at booking (the first installment) or on ``due_on``."""

    at_booking: bool
    due_on: dt.date
    amount: int


class MoneyKeeper(Protocol):
    """The answers a booking asks for. Each runs inside the caller's transaction, the booking row locked by it."""

    def plan(self, booking: Booking, items: Sequence[BookingItem]) -> None:
        """A new booking's payment schedule (deposit, installments), from its tours' payment terms."""

    def replan(self, booking: Booking) -> None:
        """The schedule again, after the booking's total or dates changed."""

    def due_now(self, booking: Booking) -> int:
        """Minor units that must be paid before the booking is confirmed (or, once confirmed, that are due)."""

    def settled(self, booking: Booking) -> int:
        """What of the total is taken care of: paid, plus money given back as a gesture (not asked for again)."""

    def unpaid(self, booking: Booking, today: dt.date) -> list[AmountDue]:
        """The parts of the price still to pay, in the order they fall due."""

    def refund_cancellation(self, booking: Booking, refundable: int, *, actor: User | None) -> None:
        """Give back ``refundable`` of what was paid for a booking being cancelled (less what is on its way back
        already, within what can still be refunded)."""

    def refund_overpayment(self, booking: Booking) -> None:
        """Give back what was paid beyond the booking's (lowered) total."""


_keeper: MoneyKeeper | None = None


def register(keeper: MoneyKeeper) -> None:
    global _keeper
    _keeper = keeper


def keeper() -> MoneyKeeper:
    if _keeper is None:
        raise ImproperlyConfigured("No money keeper is registered: add the payments app to INSTALLED_APPS.")
    return _keeper
