"""The booking's PDFs: invoice and credit-note documents, and the voucher with its check-in QR code.

A Document keeps the PDF exactly as issued (encrypted: it names people). An invoice or credit note gets one
Document, made once from the Invoice row's snapshot and never again. The seller's and customer's details are not in
that snapshot (the Invoice model has no field for them): they are read when the PDF is made, normally within a
second of the invoice, and from then on the stored PDF is the record.

Vouchers are versioned. A new version is stored only when the rendered PDF differs from the latest one. The
rendering is deterministic (no date of issue on the voucher, a check-in code that is the same every time,
WeasyPrint writes no creation time, and the embedded fonts' "modified" stamp is fixed through SOURCE_DATE_EPOCH,
the reproducible-builds convention fontTools follows), so equal bytes mean the voucher shows the same thing, and
a ``booking.modified`` that changes nothing on it (say, a passport number) adds no version. A test renders the
same voucher "a day later" and expects the same bytes. Should rendering ever stop being deterministic, the cost
is an extra identical-looking version, never a missing one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import TypeVar
from zoneinfo import ZoneInfo

import segno
from babel.core import Locale, UnknownLocaleError
from babel.dates import format_date, format_time
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext

from bookings import money
from bookings.models import Booking, Document, Invoice
from bookings.services.checkin import check_in_token, check_in_url
from core.errors import ConflictError
from core.locking import lock_row
from core.pdf import render_pdf
from tenants.routing import public_base_url
from tours.models import Tour, TourTranslation, UnitType

INVOICE_TEMPLATE = "pdf/invoice.html"
VOUCHER_TEMPLATE = "pdf/voucher.html"
VOUCHER_STATUSES = (Booking.Status.CONFIRMED, Booking.Status.COMPLETED)
# 2000-01-01: any fixed time will do. Set once for the process (a per-render set-and-restore would race between
# threads); only reproducible-build tools read it. An operator's own value is kept.
REPRODUCIBLE_EPOCH = "946684800"

_Subject = TypeVar("_Subject")


def _render(template: str, context_of: Callable[[_Subject], dict], subject: _Subject, language: str) -> bytes:
    os.environ.setdefault("SOURCE_DATE_EPOCH", REPRODUCIBLE_EPOCH)
    with translation.override(language):
        return render_pdf(template, context_of(subject))


# --- formatting for people -------------------------------------------------------------------------------------


def _locale(language: str) -> Locale:
    try:
        return Locale.parse(language.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def _long_date(value: dt.date, language: str) -> str:
    return format_date(value, "long", locale=_locale(language))


def _full_date(value: dt.date, language: str) -> str:
    return format_date(value, "full", locale=_locale(language))


def _time(value: dt.datetime, language: str) -> str:
    return format_time(value, "short", locale=_locale(language))


def _percent(value: object) -> str:
    """ "20" for 20.00, "5.5" for 5.50 (as stored in the quote snapshot)."""
    if value in (None, ""):
        return ""
    return f"{Decimal(str(value)).normalize():f}"


def _address(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _seller(booking: Booking) -> dict:
    tenant = booking.tenant
    return {
        "name": tenant.invoice_name,
        "address": _address(tenant.legal_address),
        "tax_id": tenant.tax_id,
        "email": tenant.contact_email,
        "phone": tenant.contact_phone,
        "site": public_base_url(tenant).split("://", 1)[-1],
    }


def _customer(booking: Booking) -> dict:
    """Who is billed: the agency for an on-account trade booking (the traveller named beside it), else the lead."""
    agency = booking.agency
    if booking.on_account and agency is not None:
        return {
            "name": agency.legal_name,
            "address": _address(agency.address),
            "tax_id": agency.tax_id,
            "email": agency.email,
            "traveller": booking.lead_name,
        }
    return {
        "name": booking.lead_name,
        "address": [],
        "tax_id": "",
        "email": booking.lead_email,
        "traveller": "",
    }


# --- invoices and credit notes ---------------------------------------------------------------------------------


def _local_start(line: dict) -> dt.datetime | None:
    """The departure's start in the tour's time zone, as snapshot on the invoice (older invoices: UTC)."""
    value = line.get("local_start") or line.get("departure")
    return dt.datetime.fromisoformat(value) if value else None


def _invoice_groups(lines: list[dict], language: str) -> tuple[list[dict], list[dict]]:
    """Invoice lines grouped per tour departure, and the tax lines summed per tax."""
    groups: dict[tuple, dict] = {}
    taxes: dict[tuple, dict] = {}
    for line in lines:
        if line["kind"] == "tax":
            key = (
                line.get("code") or line["label"],
                _percent(line.get("percent")),
                bool(line.get("informational")),
            )
            tax = taxes.setdefault(key, {"name": key[0], "percent": key[1], "inclusive": key[2], "amount": 0})
            tax["amount"] += line["amount"]
            continue
        start = _local_start(line)
        group_key = (line.get("tour", ""), line.get("option", ""), start)
        group = groups.setdefault(
            group_key,
            {
                "tour": group_key[0],
                "option": group_key[1],
                "when": f"{_long_date(start.date(), language)}, {_time(start, language)}" if start else "",
                "lines": [],
            },
        )
        group["lines"].append(
            {
                "kind": line["kind"],
                "label": line["label"],
                "quantity": line.get("quantity"),
                "unit_amount": line.get("unit_amount") if line["kind"] == "unit" else None,
                "amount": line["amount"],
                "informational": bool(line.get("informational")),
            }
        )
    return list(groups.values()), list(taxes.values())


def _credit_line_label(line: dict, booking: Booking) -> str:
    if line.get("refund_percent") is not None:
        return gettext(
            "Cancellation of booking %(reference)s: %(percent)s %% of the price refunded under the cancellation "
            "terms"
        ) % {"reference": booking.reference, "percent": line["refund_percent"]}
    return line["label"]


def invoice_context(invoice: Invoice) -> dict:
    """What the invoice / credit-note template shows (call inside ``translation.override(language)``)."""
    booking = invoice.booking
    tenant = booking.tenant
    language = booking.language
    zone = ZoneInfo(tenant.time_zone)
    is_credit = invoice.kind == Invoice.Kind.CREDIT_NOTE
    if is_credit:
        groups = [
            {
                "tour": "",
                "lines": [
                    {
                        "kind": "credit",
                        "label": _credit_line_label(line, booking),
                        "quantity": None,
                        "unit_amount": None,
                        "amount": line["amount"],
                    }
                    for line in invoice.lines
                    if line["kind"] == "credit"
                ],
            }
        ]
        _, taxes = _invoice_groups([line for line in invoice.lines if line["kind"] == "tax"], language)
    else:
        groups, taxes = _invoice_groups(invoice.lines, language)
    exclusive_tax = sum(tax["amount"] for tax in taxes if not tax["inclusive"])
    credited = invoice.credits
    return {
        "language": language,
        "title": gettext("Credit note") if is_credit else gettext("Invoice"),
        "number": invoice.display_number,
        "issued_on": _long_date(invoice.issued_at.astimezone(zone).date(), language),
        "credits": {
            "number": credited.display_number,
            "issued_on": _long_date(credited.issued_at.astimezone(zone).date(), language),
        }
        if is_credit and credited is not None
        else None,
        "booking": booking,
        "seller": _seller(booking),
        "customer": _customer(booking),
        "on_account": booking.on_account,
        "currency": invoice.currency,
        "groups": groups,
        "taxes": taxes,
        "tax_exclusive": any(not tax["inclusive"] for tax in taxes),
        # A credit note's tax is always inside the amount credited: nothing to say about how prices were set.
        "prices_include_tax": not is_credit and any(tax["inclusive"] for tax in taxes),
        "net_total": invoice.total - exclusive_tax,
        "total": invoice.total,
        "payment_status": None
        if is_credit or booking.on_account
        else _payment_status(invoice, language, zone),
    }


def _payment_status(invoice: Invoice, language: str, zone: ZoneInfo) -> dict:
    """What of this invoice is paid when it is made, and what is still due when (the booking's schedule)."""
    booking = invoice.booking
    keeper = money.keeper()
    paid = min(max(keeper.settled(booking), 0), invoice.total)
    due = [
        {"on": None if part.at_booking else _long_date(part.due_on, language), "amount": part.amount}
        for part in keeper.unpaid(booking, timezone.localdate(timezone.now(), zone))
    ]
    return {"paid": paid, "balance": max(invoice.total - paid, 0), "due": due}


def invoice_html(invoice: Invoice) -> str:
    """The invoice's HTML as it goes into the PDF (tests read this: the PDF's text streams are compressed)."""
    with translation.override(invoice.booking.language):
        return render_to_string(INVOICE_TEMPLATE, invoice_context(invoice))


def _invoice_filename(invoice: Invoice) -> str:
    prefix = "credit-note" if invoice.kind == Invoice.Kind.CREDIT_NOTE else "invoice"
    return f"{prefix}-{invoice.display_number}.pdf"


def issue_invoice_document(invoice: Invoice) -> Document:
    """The PDF of an invoice or credit note, made once: asking again returns the stored one unchanged."""
    existing = Document.objects.filter(invoice=invoice).first()
    if existing is not None:
        return existing
    invoice = Invoice.objects.select_related("booking__tenant", "booking__agency", "credits").get(
        pk=invoice.pk
    )
    pdf = _render(INVOICE_TEMPLATE, invoice_context, invoice, invoice.booking.language)
    kind = Document.Kind.CREDIT_NOTE if invoice.kind == Invoice.Kind.CREDIT_NOTE else Document.Kind.INVOICE
    try:
        # A concurrent worker may have stored it meanwhile: the unique constraint decides, its copy wins.
        with transaction.atomic():
            return Document.objects.create(
                booking_id=invoice.booking_id,
                kind=kind,
                invoice=invoice,
                version=1,
                filename=_invoice_filename(invoice),
                content=pdf,
                sha256=hashlib.sha256(pdf).hexdigest(),
                size=len(pdf),
            )
    except IntegrityError:
        return Document.objects.get(invoice=invoice)


# --- vouchers --------------------------------------------------------------------------------------------------


def _tour_texts(tour: Tour, language: str) -> tuple[str, str]:
    """(title, meeting point) in ``language`` when the tour has that translation."""
    translated = (
        TourTranslation.objects.filter(tour=tour, language=language)
        .values_list("title", "meeting_point")
        .first()
    )
    if translated is None:
        return tour.title, tour.meeting_point
    return translated[0] or tour.title, translated[1] or tour.meeting_point


def qr_code_data_uri(url: str) -> str:
    return segno.make(url, error="m").svg_data_uri(scale=4, border=2)


def voucher_context(booking: Booking) -> dict:
    """What the voucher template shows (call inside ``translation.override(language)``)."""
    language = booking.language
    travellers = list(booking.travellers.order_by("id"))
    items = list(
        booking.items.select_related("departure", "option__tour").order_by("departure__starts_at", "id")
    )
    tour_ids = {item.option.tour_id for item in items}
    unit_names = {
        (unit.tour_id, unit.code): unit.name for unit in UnitType.objects.filter(tour_id__in=tour_ids)
    }
    trips = []
    for item in items:
        tour = item.option.tour
        start = item.departure.starts_at.astimezone(ZoneInfo(tour.time_zone))
        title, meeting_point = _tour_texts(tour, language)
        # Travellers not tied to an item travel on every item of the booking.
        named = [t for t in travellers if t.item_id in (item.pk, None)]
        coordinates = ""
        if tour.meeting_latitude is not None and tour.meeting_longitude is not None:
            coordinates = f"{tour.meeting_latitude:.5f}, {tour.meeting_longitude:.5f}"
        trips.append(
            {
                "tour": title,
                "option": item.option.name,
                "date": _full_date(start.date(), language),
                "time": _time(start, language),
                "time_zone": tour.time_zone,
                "meeting_point": meeting_point,
                "coordinates": coordinates,
                "units": [
                    {"name": unit_names.get((tour.pk, code), code), "count": count}
                    for code, count in item.units.items()
                    if count
                ],
                "travellers": [
                    {
                        "name": f"{t.first_name} {t.last_name}".strip(),
                        "unit": unit_names.get((tour.pk, t.unit_code), t.unit_code),
                    }
                    for t in named
                ],
                "unnamed": max(0, sum(item.units.values()) - len(named)),
            }
        )
    return {
        "language": language,
        "booking": booking,
        "seller": _seller(booking),
        "lead_name": booking.lead_name,
        "agency": str(booking.agency) if booking.agency_id else "",
        "trips": trips,
        "check_in_code": check_in_token(booking),
        "qr_code": qr_code_data_uri(check_in_url(booking)),
    }


def voucher_html(booking: Booking) -> str:
    with translation.override(booking.language):
        return render_to_string(VOUCHER_TEMPLATE, voucher_context(booking))


def issue_voucher(booking: Booking) -> Document:
    """The booking's voucher as it is now: a new version if it differs from the latest, else the latest.

    The PDF is rendered before the booking's row is locked (a render takes a few hundred milliseconds, and every
    change to the booking would wait for it). Under the lock the voucher's HTML is made again from the booking as
    it is then: if a change came in meanwhile, the voucher is rendered again before it is stored. So versions are
    stored in the order of the changes, and the latest version always shows the latest state."""
    html, pdf = _voucher_pdf(_voucher_booking(booking.pk, lock=False))
    with transaction.atomic():
        booking = _voucher_booking(booking.pk, lock=True)
        if voucher_html(booking) != html:  # changed while rendering: rare, so rendered again under the lock
            pdf = _voucher_pdf(booking)[1]
        digest = hashlib.sha256(pdf).hexdigest()
        vouchers = Document.objects.filter(booking=booking, kind=Document.Kind.VOUCHER)
        latest = vouchers.defer("content").order_by("-version").first()
        if latest is not None and latest.sha256 == digest:
            return latest
        version = (vouchers.aggregate(last=Max("version"))["last"] or 0) + 1
        return Document.objects.create(
            booking=booking,
            kind=Document.Kind.VOUCHER,
            version=version,
            filename=f"voucher-{booking.reference}-v{version}.pdf",
            content=pdf,
            sha256=digest,
            size=len(pdf),
        )


def _voucher_pdf(booking: Booking) -> tuple[str, bytes]:
    """The voucher's HTML and its PDF (the PDF is a function of the HTML: same HTML, same bytes)."""
    os.environ.setdefault("SOURCE_DATE_EPOCH", REPRODUCIBLE_EPOCH)
    with translation.override(booking.language):
        context = voucher_context(booking)
        return render_to_string(VOUCHER_TEMPLATE, context), render_pdf(VOUCHER_TEMPLATE, context)


def _voucher_booking(pk: uuid.UUID, *, lock: bool) -> Booking:
    bookings = Booking.objects.select_related("tenant", "agency")
    booking = lock_row(bookings, pk=pk) if lock else bookings.get(pk=pk)
    if booking.status not in VOUCHER_STATUSES:
        raise ConflictError(
            f"Booking {booking.reference} is {booking.get_status_display().lower()}: vouchers are for confirmed "
            "bookings.",
            code="not_confirmed",
        )
    return booking


def current_voucher(booking: Booking) -> Document | None:
    """The latest voucher of a booking that may still travel (confirmed or completed); None otherwise."""
    if booking.status not in VOUCHER_STATUSES:
        return None
    return Document.objects.filter(booking=booking, kind=Document.Kind.VOUCHER).order_by("-version").first()
