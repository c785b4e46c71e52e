"""Trade bookings on account are settled by the agency's payments against its statement.

- ``statement(agency)`` (selector): what the agency owes, booking by booking, oldest departure first, with totals
  per currency (an agency that changed its invoicing currency has bookings in both: amounts are never added across
  currencies). It owes exactly what ``bookings.services.credit_available`` counts against its credit: the unpaid
  part of its confirmed, completed and no-show bookings, and the unpaid cancellation charge of cancelled ones.
- ``record_agency_payment(agency, ...)``: one bank transfer from the agency, allocated to its open bookings in that
  currency, oldest departure first; each part is an offline ``Payment`` on its booking (``Booking.paid`` grows, and
  ``payment.processed`` is published for it, as for any payment), the transfer as a whole audited once.

``payments.services.offline.record_offline_payment`` is not called per part: it accepts only bookings still being paid for
(on hold, awaiting payment, confirmed), while a statement also settles travelled (completed, no-show) bookings and
cancellation charges, and it would audit each part as a payment of its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from django.db import connection, transaction
from django.db.models import F, Min, Q
from django.http import HttpRequest

from bookings.locks import lock_bookings
from bookings.models import REFERENCE_LENGTH, Booking, BookingItem
from bookings.services import CREDIT_USING
from core.currencies import CURRENCY_CHOICES
from core.errors import ConflictError, DomainError
from core.money import format_money
from partners.locks import lock_agency
from partners.models import Agency
from payments.models import Payment
from payments.services.offline import raise_duplicate_reference, save_offline_payment
from tenants import audit

if TYPE_CHECKING:
    from accounts.models import User

Status = Booking.Status
CANCELLED_OWING = (Status.CANCELLED, Status.REFUNDED)  # as credit_available: a charge stays owed until paid

# Each part's bank reference and idempotency key carry the booking's reference after a "/", within the columns.
# (A CharField always has its max_length, which the stubs type as int | None.)
REFERENCE_MAX = cast(int, Payment._meta.get_field("provider_reference").max_length) - 1 - REFERENCE_LENGTH
IDEMPOTENCY_KEY_MAX = cast(int, Payment._meta.get_field("idempotency_key").max_length) - 1 - REFERENCE_LENGTH
_CURRENCIES = frozenset(code for code, _ in CURRENCY_CHOICES)


# --- the statement -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatementLine:
    booking: Booking
    reference: str
    agent_reference: str
    lead_name: str
    first_departure: dt.date | None
    status: str
    currency: str
    amount: int  # what the agency owes for it in all: the booking's total, or its cancellation charge
    paid: int
    open: int  # amount - paid; negative when the agency paid more than a (since reduced) total: a credit

    @property
    def is_cancellation_charge(self) -> bool:
        return self.status in CANCELLED_OWING


@dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    amount: int
    paid: int
    open: int


@dataclass(frozen=True)
class Statement:
    agency: Agency
    until: dt.date | None
    lines: tuple[StatementLine, ...]
    totals: dict[str, CurrencyTotal]  # by currency code, in code order

    @property
    def currencies(self) -> list[str]:
        return list(self.totals)

    def open_in(self, currency: str) -> int:
        total = self.totals.get(currency)
        return total.open if total else 0


def _owing() -> Q:
    """On-account bookings the agency owes money for (the same cases as credit_available)."""
    return Q(on_account=True) & (
        (Q(status__in=CREDIT_USING) & ~Q(total=F("paid")))
        | Q(status__in=CANCELLED_OWING, cancellation_charge__gt=F("paid"))
    )


def _owed(booking: Booking) -> int:
    return (booking.cancellation_charge or 0) if booking.status in CANCELLED_OWING else booking.total


def _first_departures(bookings: Iterable[Booking]) -> dict:
    rows = (
        BookingItem.objects.filter(booking__in=[booking.pk for booking in bookings])
        .values("booking")
        .annotate(first=Min("departure__local_date"))
        .values_list("booking", "first")
    )
    return dict(rows)


def _oldest_departure_first(line: StatementLine) -> tuple:
    # A booking without seats (should not happen on account) goes last rather than breaking the statement.
    return (line.first_departure or dt.date.max, line.booking.created_at, line.reference)


def _lines(bookings: list[Booking]) -> list[StatementLine]:
    departures = _first_departures(bookings)
    lines = [
        StatementLine(
            booking=booking,
            reference=booking.reference,
            agent_reference=booking.agent_reference,
            lead_name=booking.lead_name,
            first_departure=departures.get(booking.pk),
            status=booking.status,
            currency=booking.currency,
            amount=_owed(booking),
            paid=booking.paid,
            open=_owed(booking) - booking.paid,
        )
        for booking in bookings
    ]
    return sorted(lines, key=_oldest_departure_first)


def statement(agency: Agency, *, until: dt.date | None = None) -> Statement:
    """What ``agency`` owes on account, oldest departure first; with ``until``, only bookings whose first
    departure is on or before that day (e.g. a month-end statement)."""
    lines = _lines(list(Booking.objects.filter(_owing(), agency=agency)))
    if until is not None:
        lines = [line for line in lines if line.first_departure is not None and line.first_departure <= until]
    totals: dict[str, CurrencyTotal] = {}
    for currency in sorted({line.currency for line in lines}):
        in_currency = [line for line in lines if line.currency == currency]
        totals[currency] = CurrencyTotal(
            currency=currency,
            amount=sum(line.amount for line in in_currency),
            paid=sum(line.paid for line in in_currency),
            open=sum(line.open for line in in_currency),
        )
    return Statement(agency=agency, until=until, lines=tuple(lines), totals=totals)


# --- the agency's payment ------------------------------------------------------------------------------------------


def _clean_input(amount: object, currency: str, reference: str, idempotency_key: str) -> None:
    if currency not in _CURRENCIES:
        raise DomainError.for_field(
            f"Unknown currency {currency!r}; give its ISO 4217 code (e.g. EUR).", "currency"
        )
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise DomainError.for_field(
            f"The amount is a whole number of minor units of {currency} (e.g. 1250 for 12.50).", "amount"
        )
    if amount <= 0:
        raise DomainError.for_field("The amount received must be more than zero.", "amount")
    if not reference:
        raise DomainError.for_field("Enter the bank's reference of the transfer.", "reference")
    if len(reference) > REFERENCE_MAX:
        raise DomainError.for_field(
            f"The reference is too long ({REFERENCE_MAX} characters at most).", "reference"
        )
    if "/" in reference:
        # Each part is recorded as "<reference>/<booking>": a slash would make two transfers' parts ambiguous.
        raise DomainError.for_field("The reference may not contain “/”.", "reference")
    if len(idempotency_key) > IDEMPOTENCY_KEY_MAX:
        raise DomainError.for_field(
            f"The idempotency key is too long ({IDEMPOTENCY_KEY_MAX} characters at most).", "idempotency_key"
        )


def _part_key(idempotency_key: str, booking: Booking) -> str:
    return f"{idempotency_key}/{booking.reference}" if idempotency_key else ""


def _part_reference(reference: str, booking: Booking) -> str:
    return f"{reference}/{booking.reference}"


def _replayed(
    agency: Agency, idempotency_key: str, amount: int, currency: str, reference: str
) -> list[Payment] | None:
    """The parts this key already recorded (a retried form), or None; the same key for another transfer is a
    client bug, refused rather than answered with the first transfer's parts."""
    if not idempotency_key:
        return None
    candidates = Payment.objects.filter(idempotency_key__startswith=f"{idempotency_key}/").select_related(
        "booking"
    )
    parts = [part for part in candidates if part.idempotency_key == _part_key(idempotency_key, part.booking)]
    if not parts:
        return None
    same = (
        all(part.booking.agency_id == agency.pk for part in parts)
        and all(part.currency == currency for part in parts)
        and all(part.provider_reference == _part_reference(reference, part.booking) for part in parts)
        and sum(part.amount for part in parts) == amount
    )
    if not same:
        raise ConflictError(
            "This idempotency key was already used for a different agency payment.",
            code="idempotency_key_reused",
            fields={"idempotency_key": ["Already used for a different payment."]},
        )
    return sorted(parts, key=lambda part: part.pk)


def _refuse_duplicate_reference(reference: str) -> None:
    """A transfer is recorded once: neither as a payment of one booking nor as parts of an agency payment."""
    clashes = (
        Payment.objects.filter(provider=Payment.Provider.OFFLINE)
        .filter(Q(provider_reference=reference) | Q(provider_reference__startswith=f"{reference}/"))
        .select_related("booking")
    )
    for payment in clashes:
        if payment.provider_reference in (reference, _part_reference(reference, payment.booking)):
            raise_duplicate_reference(reference, payment.booking.reference)


def _serialise_reference(reference: str) -> None:
    # Two agencies' payments take different agency locks; the same transfer entered for both at once must still be
    # decided one after the other (the unique constraint cannot see it: the parts' booking references differ).
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"agency-payment:{reference}"])


def _allocate(lines: list[StatementLine], amount: int) -> list[tuple[StatementLine, int]]:
    parts, left = [], amount
    for line in lines:
        if left == 0:
            break
        if line.open <= 0:
            continue
        part = min(left, line.open)
        parts.append((line, part))
        left -= part
    return parts


def _record_part(
    booking: Booking,
    amount: int,
    reference: str,
    idempotency_key: str,
    actor: User | None,
    agency_reference: str,
) -> Payment:
    return save_offline_payment(
        booking,
        amount=amount,
        method=Payment.Method.BANK_TRANSFER,
        reference=reference,
        idempotency_key=idempotency_key,
        actor=actor,
        shown_reference=agency_reference,
        announce={"agency_payment": agency_reference},
    )


@transaction.atomic
def record_agency_payment(
    agency: Agency,
    *,
    amount: int,
    currency: str,
    reference: str,
    actor: User | None,
    idempotency_key: str = "",
    request: HttpRequest | None = None,
) -> list[Payment]:
    """A bank transfer of ``amount`` minor units of ``currency`` from ``agency``, allocated to its open bookings in
    that currency, oldest departure first: one succeeded offline ``Payment`` per booking reached (bank reference
    ``"<reference>/<booking reference>"``), returned in allocation order.

    Refused, recording nothing: more than the open total in that currency (``overpayment``: the surplus would be
    a refund to make), nothing open (``nothing_due``), a reference already recorded (``duplicate_reference``).
    The same ``idempotency_key`` returns the same payments."""
    reference = (reference or "").strip()
    idempotency_key = (idempotency_key or "").strip()
    currency = (currency or "").strip().upper()
    _clean_input(amount, currency, reference, idempotency_key)
    replayed = _replayed(agency, idempotency_key, amount, currency, reference)
    if replayed is not None:
        return replayed

    # Lock order (every writer of an agency's account takes it): the agency row, then its bookings by id. The
    # agency lock serialises the agency's payments (and its on-account confirmations), so two transfers are
    # allocated one after the other, on committed balances.
    agency = lock_agency(agency)
    _serialise_reference(reference)
    replayed = _replayed(agency, idempotency_key, amount, currency, reference)  # committed while we waited
    if replayed is not None:
        return replayed
    _refuse_duplicate_reference(reference)
    bookings = lock_bookings(Booking.objects.filter(_owing(), agency=agency, currency=currency))
    lines = _lines(bookings)
    payable = sum(line.open for line in lines if line.open > 0)
    if payable <= 0:
        raise ConflictError(
            f"{agency} owes nothing in {currency} on account; there is nothing to record.",
            code="nothing_due",
            fields={"currency": [f"Nothing open in {currency}."]},
        )
    if amount > payable:
        raise DomainError(
            f"{format_money(amount, currency)} is more than {agency} owes in {currency} ({format_money(payable, currency)}); "
            f"record at most the open total (an overpayment would have to be refunded).",
            code="overpayment",
            fields={"amount": [f"At most {format_money(payable, currency)}."]},
        )

    payments, allocation = [], []
    for line, part in _allocate(lines, amount):
        paid_before = line.booking.paid
        payments.append(
            _record_part(
                line.booking,
                part,
                _part_reference(reference, line.booking),
                _part_key(idempotency_key, line.booking),
                actor,
                reference,
            )
        )
        allocation.append(
            {"booking": line.reference, "amount": part, "paid": [paid_before, line.booking.paid]}
        )
    audit.record(
        audit.Action.CHANGE,  # the agency's account moved (each part's own row is in ``payments``)
        actor=actor,
        target=agency,
        request=request,
        changes={
            "agency_payment": [None, reference],
            "amount": [None, amount],
            "currency": [None, currency],
            "allocation": [None, allocation],
            "payments": [None, [str(payment.pk) for payment in payments]],
        },
    )
    return payments
