"""An agency's credit: what it may still owe on account, computed from its bookings (never a counter)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import cast

from django.db.models import Case, F, Sum, Value, When
from django.utils import timezone

from bookings.models import Booking
from core.errors import ConflictError
from partners.locks import lock_agency
from partners.models import Agency
from partners.selectors import contract_on

Status = Booking.Status


# Bookings whose unpaid on-account amount uses the agency's credit.
CREDIT_USING = (Status.CONFIRMED, Status.COMPLETED, Status.NO_SHOW)


def credit_available(agency: Agency, on: dt.date | None = None) -> int | None:
    """The agency's credit limit minus what it owes on account (computed from the bookings, never a counter), in
    minor units of its currency; None without a contract in force. A cancelled booking still owes its
    cancellation charge until paid."""
    contract = contract_on(agency, on or timezone.localdate())
    if contract is None:
        return None
    owed = Booking.objects.filter(agency=agency, on_account=True).aggregate(
        owed=Sum(
            Case(
                When(status__in=CREDIT_USING, then=F("total") - F("paid")),
                When(
                    status__in=(Status.CANCELLED, Status.REFUNDED),
                    cancellation_charge__gt=F("paid"),
                    then=F("cancellation_charge") - F("paid"),
                ),
                default=Value(0),
            )
        )
    )["owed"]
    return contract.credit_limit - (owed or 0)


def check_credit(booking: Booking, due: int | None = None) -> None:
    """Refuse unless the agency's credit covers ``due`` more (default: the booking's balance; a confirmed booking
    already counts in what the agency owes, so a change of it checks only the increase)."""
    # The agency row lock serialises every on-account confirmation of one agency: two agents racing for the last
    # of the credit are decided one after the other, on committed numbers. An on-account booking always has
    # its agency (CHECK booking_on_account_needs_agency).
    agency = lock_agency(cast(uuid.UUID, booking.agency_id))
    available = credit_available(agency)
    due = booking.balance if due is None else due
    if available is None:
        raise ConflictError(
            f"{agency} has no contract in force: it cannot book on account.", code="no_contract"
        )
    if due > available:
        raise ConflictError(
            f"{agency}'s credit does not cover this booking: {max(available, 0)} available, {due} due "
            f"(minor units of {agency.currency}).",
            code="credit_exceeded",
        )
