"""Invoices and credit notes: numbered gap-free per series, never changed once issued.

Booking events reach their consumers in any order (a cancellation's consumer may run before the confirmation's).
So consumers do not each "add their invoice": they all first call ``bring_up_to_date``, which makes the invoices
say what was sold, whatever ran before; the cancellation then credits its share once. Every invoice and credit note
announces itself with ``invoice.issued`` in the transaction that numbers it, and its PDF is made from that event,
after the numbering lock is released (a render takes ~0.3 s; the tenant's next invoice should not wait for it)."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from bookings.locks import lock_booking
from bookings.models import Booking, Invoice, InvoiceSeries
from core.errors import ConflictError, DomainError
from core.money import round_minor
from events.outbox import publish
from tenants.context import require_tenant_id
from tenants.models import Tenant

INVOICEABLE = (Booking.Status.CONFIRMED, Booking.Status.COMPLETED, Booking.Status.NO_SHOW)
# Statuses a confirmed booking may end in that keep it invoiced (with a credit note for what it gives back).
INVOICED_AFTER_CONFIRMATION = (Booking.Status.CANCELLED, Booking.Status.REFUNDED)


def _series_prefix(tenant_id: uuid.UUID) -> str:
    """The calendar year of issue, in the tenant's time zone (an invoice on 31 December stays in that year)."""
    zone = Tenant.objects.values_list("time_zone", flat=True).get(pk=tenant_id)
    return str(timezone.now().astimezone(ZoneInfo(zone)).year)


def next_number(prefix: str) -> int:
    """Take the next number of the series. The row stays locked until the caller's transaction ends, so numbers
    are handed out one transaction at a time, and one that rolls back returns its number: no gaps, no doubles."""
    tenant_id = require_tenant_id()
    if not connection.in_atomic_block:
        raise RuntimeError("an invoice number belongs to the transaction that writes the invoice")
    table = InvoiceSeries._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (tenant_id, id, prefix, next_number) VALUES (%s, gen_random_uuid(), %s, 1) "
            "ON CONFLICT ON CONSTRAINT invoiceseries_unique_prefix DO NOTHING",
            [tenant_id, prefix],
        )
        cursor.execute(
            f"UPDATE {table} SET next_number = next_number + 1 WHERE tenant_id = %s AND prefix = %s "
            "RETURNING next_number - 1",
            [tenant_id, prefix],
        )
        return cursor.fetchone()[0]


def _lines(booking: Booking) -> tuple[list[dict], int]:
    """The quote lines of every item, with what the printed invoice needs to say which tour and day they are
    for (the departure's date in the tour's time zone, as the traveller knows it)."""
    lines, tax = [], 0
    for item in booking.items.select_related("departure", "option__tour").order_by(
        "departure__starts_at", "pk"
    ):
        tour = item.option.tour
        for line in item.quote.get("lines", []):
            if line["kind"] == "tax":
                tax += line["amount"]
            if line["kind"] == "commission":
                continue  # between operator and agency; not on the traveller's invoice
            lines.append(
                {
                    **line,
                    "departure_id": str(item.departure_id),
                    "option_id": str(item.option_id),
                    "departure": item.departure.starts_at.isoformat(),
                    "local_start": item.departure.starts_at.astimezone(ZoneInfo(tour.time_zone)).isoformat(),
                    "tour": tour.title,
                    "option": item.option.name,
                }
            )
    return lines, tax


# Printed on the invoice but not part of the sale: a tour renamed, or a departure's time corrected, after the
# invoice does not make it wrong (and must not re-invoice every booking the next time one of its events runs).
_DESCRIPTIVE = frozenset({"departure", "local_start", "tour", "option"})


def _sale(lines: list[dict]) -> list[str]:
    """The lines as what was sold, in no particular order (the printed order follows the departures' times)."""
    return sorted(
        json.dumps({key: value for key, value in line.items() if key not in _DESCRIPTIVE}, sort_keys=True)
        for line in lines
    )


def _says_what_was_sold(invoice: Invoice, booking: Booking, lines: list[dict]) -> bool:
    return (
        invoice.total == booking.total
        and invoice.currency == booking.currency
        and _sale(invoice.lines) == _sale(lines)
    )


def current_invoice(booking: Booking) -> Invoice | None:
    """The booking's latest invoice (after a priced change, the earlier ones are credited in full)."""
    return booking.invoices.filter(kind=Invoice.Kind.INVOICE).order_by("-issued_at", "-number").first()


def should_be_invoiced(booking: Booking) -> bool:
    """A booking is invoiced once it was confirmed: while it stands, and after it is cancelled or refunded (the
    cancellation's charge is what stays invoiced). One never confirmed sold nothing."""
    if booking.confirmed_at is None:
        return False
    return booking.status in INVOICEABLE or booking.status in INVOICED_AFTER_CONFIRMATION


@transaction.atomic
def issue_invoice(booking: Booking) -> Invoice:
    """The booking's invoice (issued once; asking again returns it)."""
    booking = lock_booking(booking)
    existing = current_invoice(booking)
    if existing is not None:
        return existing
    if not should_be_invoiced(booking):
        raise ConflictError(
            f"Booking {booking.reference} is {booking.get_status_display().lower()}: only confirmed bookings are "
            "invoiced.",
            code="not_invoiceable",
        )
    return _new_invoice(booking, *_lines(booking))


def _new_invoice(booking: Booking, lines: list[dict], tax: int) -> Invoice:
    prefix = _series_prefix(booking.tenant_id)
    invoice = Invoice.objects.create(
        booking=booking,
        kind=Invoice.Kind.INVOICE,
        series=prefix,
        number=next_number(prefix),
        currency=booking.currency,
        total=booking.total,
        tax=tax,
        lines=lines,
    )
    _announce(invoice, booking)
    return invoice


def _announce(invoice: Invoice, booking: Booking) -> None:
    """``invoice.issued``, in the numbering transaction: the PDF is made from it, so every invoice and credit note
    gets one, and never while this transaction holds the series lock."""
    publish(
        "invoice.issued",
        booking,
        {"invoice": str(invoice.pk), "kind": invoice.kind, "number": invoice.display_number},
    )


@transaction.atomic
def bring_up_to_date(booking: Booking, *, source: str) -> list[Invoice]:
    """Make the booking's invoices say what was sold, whichever of its events were handled before.

    A booking that was confirmed (and still stands, or was cancelled or refunded since) and has no invoice gets one
    for its items (cancelling changes neither items nor total: a cancelled booking is invoiced as it was sold, and
    the cancellation's credit note takes off what it gives back). An invoice that no longer matches the items (a
    re-priced change, another date) is credited in full and a new one issued: an issued invoice is never edited.
    ``source`` (the event) is recorded on such a credit note. Returns what was issued; [] when nothing was due,
    so running it again, or from another consumer, issues nothing."""
    return _bring_up_to_date(lock_booking(booking), source=source)


def _bring_up_to_date(booking: Booking, *, source: str) -> list[Invoice]:
    """``bring_up_to_date`` of a booking whose row this transaction has locked."""
    if not should_be_invoiced(booking):
        return []
    lines, tax = _lines(booking)
    invoice = current_invoice(booking)
    if invoice is None:
        return [_new_invoice(booking, lines, tax)]
    if _says_what_was_sold(invoice, booking, lines):
        return []
    issued = []
    earlier_credits = credited_so_far(invoice)  # e.g. goodwill: it still applies to the booking as changed
    left = invoice.total - earlier_credits
    if left > 0:
        issued.append(
            issue_credit_note(
                invoice, left, f"Booking {booking.reference} changed; replaced", source=f"{source}:replaced"
            )
        )
    replacement = _new_invoice(booking, lines, tax)
    issued.append(replacement)
    carried = min(earlier_credits, replacement.total)
    if carried > 0:
        issued.append(
            issue_credit_note(
                replacement,
                carried,
                f"Credits on {invoice.display_number} carried over",
                source=f"{source}:carried",
            )
        )
    return issued


@transaction.atomic
def credit_cancellation(
    booking: Booking, *, source: str, charge: int, details: dict | None = None
) -> list[Invoice]:
    """A cancellation's credit note, once per ``source`` (the cancellation event): the booking's invoice, as it
    stands after ``bring_up_to_date``, is credited down to the cancellation ``charge`` — whatever was credited
    before (goodwill) counts, so what stays invoiced is the charge the customer owes, as the agency's credit and
    the booking say. Returns what was issued."""
    booking = lock_booking(booking)
    issued = _bring_up_to_date(booking, source=source)
    invoice = current_invoice(booking)
    if invoice is None:
        return issued  # never confirmed: nothing was invoiced, nothing to credit
    already = booking.invoices.filter(kind=Invoice.Kind.CREDIT_NOTE, lines__contains=[{"source": source}])
    if already.exists():
        return issued
    amount = invoice.total - credited_so_far(invoice) - max(charge, 0)
    if amount <= 0:
        return issued
    credit_note = issue_credit_note(
        invoice, amount, f"Cancellation of booking {booking.reference}", source=source, details=details
    )
    return [*issued, credit_note]


def credited_so_far(invoice: Invoice) -> int:
    """Minor units of ``invoice`` already credited (a positive number)."""
    return -(invoice.credit_notes.aggregate(total=Sum("total"))["total"] or 0)


@transaction.atomic
def issue_credit_note(
    invoice: Invoice, amount: int, reason: str, *, source: str = "", details: dict | None = None
) -> Invoice:
    """Credit ``amount`` (minor units, positive) of an invoice; all credit notes together never exceed it.

    ``source`` names what the credit note is for (e.g. the cancellation event): a second call with the same
    source returns the credit note already issued instead of crediting twice. ``details`` (JSON values) go into
    the printed line, e.g. the refund tier of a cancellation."""
    if invoice.kind != Invoice.Kind.INVOICE:
        raise DomainError(
            "A credit note credits an invoice.", code="invalid", fields={"invoice": ["Not an invoice."]}
        )
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise DomainError("Credit a positive amount.", code="invalid", fields={"amount": ["Above 0."]})
    if not reason.strip():
        raise DomainError(
            "Say why the invoice is credited.", code="invalid", fields={"reason": ["Required."]}
        )
    # Credit notes of one invoice are decided one at a time: under the booking's row lock (invoice rows cannot be
    # locked: FOR UPDATE needs the UPDATE privilege the runtime role does not have on them).
    booking = lock_booking(invoice.booking_id)
    if source:
        earlier = invoice.credit_notes.filter(lines__contains=[{"source": source}]).first()
        if earlier is not None:
            return earlier
    credited = credited_so_far(invoice)
    if credited + amount > invoice.total:
        raise ConflictError(
            f"Only {invoice.total - credited} (minor units of {invoice.currency}) of {invoice} is left to credit.",
            code="credit_exceeds_invoice",
            fields={"amount": [f"At most {invoice.total - credited}."]},
        )
    taxes = _credited_taxes(invoice, credited, amount)
    prefix = _series_prefix(invoice.tenant_id)
    credit_note = Invoice.objects.create(
        booking=booking,
        kind=Invoice.Kind.CREDIT_NOTE,
        series=prefix,
        number=next_number(prefix),
        credits=invoice,
        currency=invoice.currency,
        total=-amount,
        tax=sum(line["amount"] for line in taxes),
        lines=[
            {
                **(details or {}),
                "kind": "credit",
                "label": reason.strip(),
                "amount": -amount,
                "credits": invoice.display_number,
                "source": source,
            },
            *taxes,
        ],
    )
    _announce(credit_note, booking)
    return credit_note


def _credited_taxes(invoice: Invoice, credited: int, amount: int) -> list[dict]:
    """The tax inside a credit of ``amount`` (after ``credited`` already credited), per tax of the invoice, in
    proportion to the invoice total. Rounded on the running total, so credit notes that together credit the whole
    invoice give back exactly its tax, not a cent more or less."""
    taxes: dict[tuple, dict] = {}
    for line in invoice.lines:
        if line["kind"] == "tax":
            key = (line.get("code") or line["label"], line.get("percent"))
            taxes.setdefault(key, {"code": key[0], "percent": key[1], "amount": 0})["amount"] += line[
                "amount"
            ]
    lines = []
    for tax in taxes.values():
        before = round_minor(Decimal(tax["amount"]) * credited / invoice.total)
        after = round_minor(Decimal(tax["amount"]) * (credited + amount) / invoice.total)
        if after != before:
            lines.append(
                {
                    "kind": "tax",
                    "code": tax["code"],
                    "label": f"of which {tax['code']}",
                    "percent": tax["percent"],
                    "amount": -(after - before),
                    "informational": True,  # inside the credited amount, whether the prices included tax or not
                }
            )
    return lines
