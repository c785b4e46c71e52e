"""Invoices and credit notes: numbered gap-free per series, never changed once issued."""

from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from bookings.models import Booking, Invoice, InvoiceSeries
from core.errors import ConflictError, DomainError
from core.money import round_minor
from tenants.context import require_tenant_id
from tenants.models import Tenant

INVOICEABLE = (Booking.Status.CONFIRMED, Booking.Status.COMPLETED, Booking.Status.NO_SHOW)


def _series_prefix(tenant_id) -> str:
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
    for item in booking.items.select_related("departure", "option__tour").order_by("departure__starts_at"):
        tour = item.option.tour
        for line in item.quote.get("lines", []):
            if line["kind"] == "tax":
                tax += line["amount"]
            if line["kind"] == "commission":
                continue  # between operator and agency; not on the traveller's invoice
            lines.append(
                {
                    **line,
                    "departure": item.departure.starts_at.isoformat(),
                    "local_start": item.departure.starts_at.astimezone(ZoneInfo(tour.time_zone)).isoformat(),
                    "tour": tour.title,
                    "option": item.option.name,
                }
            )
    return lines, tax


def current_invoice(booking: Booking) -> Invoice | None:
    """The booking's latest invoice (after a priced change, the earlier ones are credited in full)."""
    return booking.invoices.filter(kind=Invoice.Kind.INVOICE).order_by("-issued_at", "-number").first()


@transaction.atomic
def issue_invoice(booking: Booking) -> Invoice:
    """The booking's invoice (issued once; asking again returns it)."""
    booking = Booking.objects.select_for_update().get(pk=booking.pk)
    existing = current_invoice(booking)
    if existing is not None:
        return existing
    return _new_invoice(booking)


def _new_invoice(booking: Booking) -> Invoice:
    if booking.status not in INVOICEABLE:
        raise ConflictError(
            f"Booking {booking.reference} is {booking.get_status_display().lower()}: only confirmed bookings are "
            "invoiced.",
            code="not_invoiceable",
        )
    lines, tax = _lines(booking)
    prefix = _series_prefix(booking.tenant_id)
    return Invoice.objects.create(
        booking=booking,
        kind=Invoice.Kind.INVOICE,
        series=prefix,
        number=next_number(prefix),
        currency=booking.currency,
        total=booking.total,
        tax=tax,
        lines=lines,
    )


@transaction.atomic
def reinvoice_after_change(booking: Booking, *, source: str) -> list[Invoice]:
    """After a priced change of an invoiced booking (other units, another date), the invoice no longer says what
    was sold: it is credited in full and a new invoice issued for the booking as it is now (the usual correction:
    an issued invoice is never edited). Returns the documents issued: [credit note, invoice], or [] when the
    current invoice already matches (a retried consumer, or a change that does not touch the invoice)."""
    booking = Booking.objects.select_for_update().get(pk=booking.pk)
    invoice = current_invoice(booking)
    if invoice is None or booking.status not in INVOICEABLE:
        return []  # not invoiced yet: the confirmation's invoice will show the booking as it is then
    lines, _tax = _lines(booking)
    if invoice.total == booking.total and invoice.lines == lines:
        return []
    left = invoice.total - credited_so_far(invoice)
    issued = []
    if left > 0:
        issued.append(
            issue_credit_note(invoice, left, f"Booking {booking.reference} changed; replaced", source=source)
        )
    issued.append(_new_invoice(booking))
    return issued


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
    Booking.objects.select_for_update().filter(pk=invoice.booking_id).first()
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
    return Invoice.objects.create(
        booking_id=invoice.booking_id,
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
