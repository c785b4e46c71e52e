"""An agency's statement in the back office: what it owes on account (on-account bookings and unpaid cancellation
charges, per currency), as a page and a CSV, where finance records the agency's bank transfers
(``payments.services.statements``). Hooked onto the agency's admin page (``portals.backoffice.admin``)."""

from __future__ import annotations

import csv
import io
import uuid

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from bookings.manifest import spreadsheet_safe
from core.downloads import private_download
from core.errors import DomainError
from core.money import Money, format_money
from partners.models import Agency
from payments.services import statements

STATEMENT_PERMISSION = "payments.view_payment"
RECORD_PERMISSION = "payments.add_payment"  # finance, managers and owners (tenants.roles)


class AgencyPaymentForm(forms.Form):
    """A bank transfer from the agency, as the bank shows it: an amount in major units of one of the currencies
    the agency owes in. The hidden key is new on each render, so a double-submitted form records one payment."""

    amount = forms.DecimalField(
        min_value=0,
        max_digits=18,
        help_text="As on the bank statement, e.g. 1250.00. Oldest departures first.",
    )
    currency = forms.ChoiceField()
    reference = forms.CharField(
        max_length=statements.REFERENCE_MAX, label="Bank reference", help_text="The transfer's reference."
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=statements.IDEMPOTENCY_KEY_MAX)

    def __init__(self, *args, currencies: list[str], **kwargs):
        kwargs.setdefault("initial", {}).setdefault("idempotency_key", uuid.uuid4().hex)
        super().__init__(*args, **kwargs)
        self.fields["currency"].choices = [(code, code) for code in currencies]
        if len(currencies) == 1:
            self.fields["currency"].initial = currencies[0]

    def clean(self):
        data = super().clean()
        amount, currency = data.get("amount"), data.get("currency")
        if amount is None or not currency:
            return data
        try:
            data["minor_units"] = Money.from_decimal(amount, currency).amount
        except ValueError:
            self.add_error("amount", f"{currency} has at most {Money(0, currency).exponent} decimals.")
            return data
        if data["minor_units"] <= 0:
            self.add_error("amount", "The amount received must be more than zero.")
        return data

    def add_service_error(self, error: DomainError) -> None:
        """The service's field errors under the fields shown, and its message above the form unless a field
        already says it."""
        shown: list[str] = []
        for name, problems in error.fields.items():
            if name in self.fields and not self.fields[name].widget.is_hidden:
                for problem in problems:
                    self.add_error(name, str(problem))
                    shown.append(str(problem))
        if error.message not in shown:
            self.add_error(None, error.message)


def _agency_or_404(model_admin, request: HttpRequest, object_id: str) -> Agency:
    agency = model_admin.get_object(request, unquote(object_id))
    if agency is None:
        raise Http404("No such agency.")
    if not (model_admin.has_view_permission(request, agency) and request.user.has_perm(STATEMENT_PERMISSION)):
        raise PermissionDenied
    return agency


def _statement_rows(current: statements.Statement) -> list[dict]:
    return [
        {
            "line": line,
            "amount": format_money(line.amount, line.currency),
            "paid": format_money(line.paid, line.currency),
            "open": format_money(line.open, line.currency),
            "booking_url": reverse("admin:bookings_booking_change", args=[line.booking.pk]),
        }
        for line in current.lines
    ]


def _statement_totals(current: statements.Statement) -> list[dict]:
    return [
        {
            "currency": total.currency,
            "amount": format_money(total.amount, total.currency),
            "paid": format_money(total.paid, total.currency),
            "open": format_money(total.open, total.currency),
        }
        for total in current.totals.values()
    ]


def agency_statement(request: HttpRequest, object_id: str, *, model_admin) -> HttpResponse:
    agency = _agency_or_404(model_admin, request, object_id)
    page_url = reverse("admin:partners_agency_statement", args=[agency.pk])
    can_record = request.user.has_perm(RECORD_PERMISSION)
    current = statements.statement(agency)
    currencies = [code for code in current.currencies if current.open_in(code) > 0]
    form = None
    if request.method == "POST":
        if not can_record:
            raise PermissionDenied
        form = AgencyPaymentForm(request.POST, currencies=currencies)
        if form.is_valid():
            data = form.cleaned_data
            try:
                payments = statements.record_agency_payment(
                    agency,
                    amount=data["minor_units"],
                    currency=data["currency"],
                    reference=data["reference"],
                    actor=request.user,
                    idempotency_key=data["idempotency_key"],
                    request=request,
                )
            except DomainError as error:
                form.add_service_error(error)
            else:
                allocated = ", ".join(
                    f"{payment.booking.reference} {format_money(payment.amount, payment.currency)}"
                    for payment in payments
                )
                messages.success(
                    request,
                    f"{format_money(data['minor_units'], data['currency'])} from {agency} recorded ({allocated}).",
                )
                return redirect(page_url)
    elif can_record and currencies:
        form = AgencyPaymentForm(currencies=currencies)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": f"Statement of {agency}",
        "agency": agency,
        "original": agency,
        "rows": _statement_rows(current),
        "totals": _statement_totals(current),
        "form": form,
        "can_record": can_record,
        "csv_url": reverse("admin:partners_agency_statement_csv", args=[agency.pk]),
        "change_url": reverse("admin:partners_agency_change", args=[agency.pk]),
    }
    return TemplateResponse(request, "admin/partners/agency/statement.html", context)


STATEMENT_CSV_COLUMNS = [
    "Booking",
    "Agent reference",
    "Lead",
    "First departure",
    "Status",
    "Currency",
    "Amount",
    "Paid",
    "Open",
]


def statement_csv(current: statements.Statement) -> bytes:
    """Amounts in major units (what a spreadsheet sums); one total row per currency, never a grand total."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(STATEMENT_CSV_COLUMNS)
    for line in current.lines:
        writer.writerow(
            [
                spreadsheet_safe(value)
                for value in (
                    line.reference,
                    line.agent_reference,
                    line.lead_name,
                    line.first_departure.isoformat() if line.first_departure else "",
                    "cancellation charge" if line.is_cancellation_charge else line.status,
                    line.currency,
                    Money(line.amount, line.currency).to_decimal(),
                    Money(line.paid, line.currency).to_decimal(),
                    Money(line.open, line.currency).to_decimal(),
                )
            ]
        )
    for total in current.totals.values():
        writer.writerow(
            [
                "Total",
                "",
                "",
                "",
                "",
                total.currency,
                Money(total.amount, total.currency).to_decimal(),
                Money(total.paid, total.currency).to_decimal(),
                Money(total.open, total.currency).to_decimal(),
            ]
        )
    return ("\ufeff" + buffer.getvalue()).encode()  # the byte-order mark makes Excel read UTF-8


def agency_statement_csv(request: HttpRequest, object_id: str, *, model_admin) -> HttpResponse:
    agency = _agency_or_404(model_admin, request, object_id)
    filename = f"statement-{agency.pk}-{timezone.localdate():%Y%m%d}.csv"
    return private_download(statement_csv(statements.statement(agency)), filename, "text/csv; charset=utf-8")
