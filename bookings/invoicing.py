"""Invoices and credit notes: numbered gap-free per series, never changed once issued."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from bookings.models import Booking, Invoice, InvoiceSeries
from core.errors import ConflictError, DomainError
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
    lines, tax = [], 0
    for item in booking.items.select_related("departure", "option__tour").order_by("departure__starts_at"):
        for line in item.quote.get("lines", []):
            if line["kind"] == "tax":
                tax += line["amount"]
            if line["kind"] == "commission":
                continue  # between operator and agency; not on the traveller's invoice
            lines.append(
                {**line, "departure": item.departure.starts_at.isoformat(), "tour": item.option.tour.title}
            )
    return lines, tax


@transaction.atomic
def issue_invoice(booking: Booking) -> Invoice:
    """The booking's invoice (issued once; asking again returns it)."""
    booking = Booking.objects.select_for_update().get(pk=booking.pk)
    existing = booking.invoices.filter(kind=Invoice.Kind.INVOICE).first()
    if existing is not None:
        return existing
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
def issue_credit_note(invoice: Invoice, amount: int, reason: str) -> Invoice:
    """Credit ``amount`` (minor units, positive) of an invoice; all credit notes together never exceed it."""
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
    credited = -(invoice.credit_notes.aggregate(total=Sum("total"))["total"] or 0)
    if credited + amount > invoice.total:
        raise ConflictError(
            f"Only {invoice.total - credited} (minor units of {invoice.currency}) of {invoice} is left to credit.",
            code="credit_exceeds_invoice",
            fields={"amount": [f"At most {invoice.total - credited}."]},
        )
    prefix = _series_prefix(invoice.tenant_id)
    return Invoice.objects.create(
        booking_id=invoice.booking_id,
        kind=Invoice.Kind.CREDIT_NOTE,
        series=prefix,
        number=next_number(prefix),
        credits=invoice,
        currency=invoice.currency,
        total=-amount,
        tax=0,
        lines=[
            {"kind": "credit", "label": reason.strip(), "amount": -amount, "credits": invoice.display_number}
        ],
    )
