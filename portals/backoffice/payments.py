"""Back-office pages of payments beyond the model admin: the exchange-rate CSV import, and the "Payments" panel
shown on a booking's page (ledger, schedule, attempts, refunds)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from bookings.models import Booking
from core.errors import DomainError
from core.money import format_money
from payments import selectors
from payments.models import ExchangeRate, Payment, PaymentSchedule, Refund
from payments.services import fx, refunds, schedules

MAX_IMPORT_BYTES = 1_000_000


# --- exchange-rate import -----------------------------------------------------------------------------------------


class RateImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8, a header row base,quote,rate,valid_on, e.g. EUR,NOK,11.4235,2026-06-01 "
        "(1 base = rate quote). Every row is checked; if one is wrong, nothing is imported.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_IMPORT_BYTES:
            raise forms.ValidationError(f"The file is larger than {MAX_IMPORT_BYTES // 1000} kB.")
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text.") from None
        reader = csv.DictReader(io.StringIO(text))
        header = [name.strip().lower() for name in reader.fieldnames or []]
        missing = [name for name in fx.RATE_COLUMNS if name not in header]
        if missing:
            raise forms.ValidationError(
                f"The header row lacks {', '.join(missing)}: it must be {','.join(fx.RATE_COLUMNS)}."
            )
        reader.fieldnames = header
        return [
            row
            for row in reader
            if any((value or "").strip() for value in row.values() if isinstance(value, str))
        ]


def exchange_rate_import(request: HttpRequest, *, model_admin) -> HttpResponse:
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    form = RateImportForm(request.POST or None, request.FILES or None)
    row_errors: list[str] = []
    if request.method == "POST" and form.is_valid():
        try:
            # Row numbers as a spreadsheet shows the file: the header is row 1.
            saved = fx.import_rates(form.cleaned_data["file"], ExchangeRate.Source.IMPORTED, first_row=2)
        except DomainError as error:
            form.add_error("file", error.message)
            row_errors = list(error.fields.get("rows", []))
        else:
            messages.success(request, f"{len(saved)} exchange rate{'s' if len(saved) != 1 else ''} imported.")
            return redirect(reverse("admin:payments_exchangerate_changelist"))
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": "Import exchange rates",
        "form": form,
        "row_errors": row_errors,
    }
    return TemplateResponse(request, "admin/payments/exchangerate/import.html", context)


# --- the booking page's payments panel ----------------------------------------------------------------------------


@dataclass(frozen=True)
class InstallmentRow:
    sequence: int
    kind: str
    due_on: object
    amount: str
    covered: str
    paid: bool
    due: bool
    dunning: str
    last_failure: str


def payments_panel(booking: Booking) -> dict:
    """What the "Payments" section of a booking's page shows; amounts formatted in the booking's currency."""
    currency = booking.currency
    ledger = selectors.ledger(booking)
    states = schedules.installment_states(booking)
    schedule = PaymentSchedule.objects.filter(booking=booking).only("needs_attention").first()
    booking_refunds = selectors.refunds_of(booking)
    return {
        "ledger": [
            ("Total", format_money(ledger.total, currency)),
            ("Paid", format_money(ledger.paid, currency)),
            ("Refunded", format_money(ledger.refunded, currency)),
            ("Balance", format_money(ledger.balance, currency)),
            ("Refundable", format_money(refunds.refundable(booking), currency)),
            ("Due now", format_money(schedules.amount_due_now(booking), currency)),
        ],
        "needs_attention": bool(schedule and schedule.needs_attention),
        "installments": [
            InstallmentRow(
                sequence=state.installment.sequence,
                kind=state.installment.get_kind_display(),
                due_on=state.installment.due_on,
                amount=format_money(state.installment.amount, currency),
                covered=format_money(state.covered, currency),
                paid=state.paid,
                due=state.due,
                dunning=state.installment.get_dunning_display() if state.installment.dunning else "",
                last_failure=state.installment.last_failure,
            )
            for state in states
        ],
        "payments": [
            (payment, format_money(payment.amount, payment.currency))
            for payment in selectors.payments_of(booking)
        ],
        "refunds": [(refund, format_money(refund.amount, refund.currency)) for refund in booking_refunds],
        # Offline parts wait for staff to send the money and record it on the refund list.
        "offline_pending": any(
            refund.status == Refund.Status.PENDING and refund.payment.provider == Payment.Provider.OFFLINE
            for refund in booking_refunds
        ),
    }
