"""Back office for partner agencies: the agency, its contacts, its contracts and the people who book for it.

Agencies, contracts and bookers are written through ``partners.services`` (which validate and audit); contacts are
plain audited rows. The agency's statement (what it owes on account) has its own page, where finance records the
agency's bank transfers through ``payments.statements``.
"""

from __future__ import annotations

import csv
import io
import uuid
from functools import partial

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from bookings.manifest import spreadsheet_safe
from core.downloads import private_download
from core.errors import DomainError
from core.money import Money, format_money
from partners import services
from partners.models import Agency, AgencyContact, Contract, PartnerUser
from payments.services import statements
from tenants import audit
from tenants.admin import AuditedInlinesAdmin, ServiceErrorsAsFormErrors, adopt_saved
from tenants.admin_sites import tenant_admin_site


class AgencyContactInline(admin.TabularInline):
    model = AgencyContact
    extra = 0


class ContractInline(admin.StackedInline):
    model = Contract
    extra = 0
    can_delete = False  # end a contract (valid to) instead: statements and credit history refer to it
    fields = [
        "model",
        "commission_percent",
        "payment_terms_days",
        "credit_limit",
        ("valid_from", "valid_to"),
        "notes",
    ]


class PartnerUserForm(forms.ModelForm):
    # Never a choice of user accounts: the user table spans every tenant. A new booker is named by email and
    # found or invited by the service.
    email = forms.EmailField(required=False, help_text="New bookers only: they get an account by email.")
    full_name = forms.CharField(required=False, max_length=200)

    class Meta:
        model = PartnerUser
        fields = ["is_agency_admin", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding:  # an existing booker's account is shown, not edited, here
            self.fields["email"].disabled = self.fields["full_name"].disabled = True

    def clean(self):
        data = super().clean()
        if self.instance._state.adding and self.has_changed() and not data.get("email"):
            self.add_error("email", "Enter the booker's email address.")
        return data


class PartnerUserInline(admin.TabularInline):
    model = PartnerUser
    form = PartnerUserForm
    extra = 0
    can_delete = False  # deactivate instead: their bookings keep pointing at them
    fields = ["account", "email", "full_name", "is_agency_admin", "is_active"]
    readonly_fields = ["account"]
    verbose_name = "booker"

    @admin.display(description="Account")
    def account(self, obj) -> str:
        return obj.user.email if obj and obj.user_id else "—"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")


def _note(formset, row_form, saved) -> None:
    if row_form.instance._state.adding:
        formset.new_objects.append(saved)
    else:
        formset.changed_objects.append((saved, row_form.changed_data))


# --- the agency's statement ---------------------------------------------------------------------------------------

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


@admin.register(Agency, site=tenant_admin_site)
class AgencyAdmin(ServiceErrorsAsFormErrors, AuditedInlinesAdmin):
    list_display = ["legal_name", "trading_name", "country", "currency", "status", "email", "created_at"]
    list_filter = ["status", "country", "currency"]
    search_fields = ["legal_name", "trading_name", "email", "tax_id"]
    inlines = [AgencyContactInline, ContractInline, PartnerUserInline]
    change_form_template = "admin/partners/agency/change_form.html"

    def get_urls(self):
        return [
            path(
                "<path:object_id>/statement/",
                self.admin_site.admin_view(partial(agency_statement, model_admin=self)),
                name="partners_agency_statement",
            ),
            path(
                "<path:object_id>/statement.csv",
                self.admin_site.admin_view(partial(agency_statement_csv, model_admin=self)),
                name="partners_agency_statement_csv",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "statement_url": reverse("admin:partners_agency_statement", args=[object_id])
            if request.user.has_perm(STATEMENT_PERMISSION)
            else None,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if change:
            changes = {
                name: form.cleaned_data[name] for name in form.changed_data if name in services.AGENCY_FIELDS
            }
            saved = services.update_agency(obj, actor=request.user, request=request, **changes)
        else:
            fields = {
                name: form.cleaned_data[name] for name in services.AGENCY_FIELDS if name in form.cleaned_data
            }
            saved = services.create_agency(actor=request.user, request=request, **fields)
        adopt_saved(obj, saved)

    def save_formset(self, request, form, formset, change):
        agency = form.instance
        # The admin's change message reads these, as formset.save() would have set them.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        if formset.model is Contract:
            for contract_form in formset.forms:
                if not contract_form.has_changed():
                    continue
                fields = {
                    name: contract_form.cleaned_data[name]
                    for name in services.CONTRACT_FIELDS
                    if name in contract_form.cleaned_data
                }
                existing = None if contract_form.instance._state.adding else contract_form.instance
                saved = services.save_contract(
                    agency, existing, actor=request.user, request=request, **fields
                )
                _note(formset, contract_form, saved)
        elif formset.model is PartnerUser:
            for booker_form in formset.forms:
                if not booker_form.has_changed():
                    continue
                data = booker_form.cleaned_data
                if booker_form.instance._state.adding:
                    booker = services.add_partner_user(
                        agency,
                        email=data["email"],
                        full_name=data.get("full_name", ""),
                        is_agency_admin=data.get("is_agency_admin", False),
                        actor=request.user,
                        request=request,
                    )
                    if not data.get("is_active", True):
                        services.set_partner_user_active(booker, False, actor=request.user, request=request)
                    _note(formset, booker_form, booker)
                    continue
                booker = booker_form.instance
                if "is_active" in booker_form.changed_data:
                    services.set_partner_user_active(
                        booker, data["is_active"], actor=request.user, request=request
                    )
                if "is_agency_admin" in booker_form.changed_data:
                    booker = PartnerUser.objects.get(pk=booker.pk)
                    booker.is_agency_admin = data["is_agency_admin"]
                    audit.save_audited(booker, actor=request.user, request=request)
                _note(formset, booker_form, booker)
        else:
            super().save_formset(request, form, formset, change)


@admin.register(Contract, site=tenant_admin_site)
class ContractAdmin(ServiceErrorsAsFormErrors, AuditedInlinesAdmin):
    """Contracts of every agency in one list (credit limits and expiry at a glance); editing goes through the
    same service as the agency page."""

    list_display = ["agency", "model", "commission_percent", "credit_limit", "valid_from", "valid_to"]
    list_filter = ["model"]
    search_fields = ["agency__legal_name", "agency__trading_name"]
    list_select_related = ["agency"]
    fields = [
        "agency",
        "model",
        "commission_percent",
        "payment_terms_days",
        "credit_limit",
        ("valid_from", "valid_to"),
        "notes",
    ]

    def get_readonly_fields(self, request, obj=None):
        return ["agency"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        fields = {
            name: form.cleaned_data[name] for name in services.CONTRACT_FIELDS if name in form.cleaned_data
        }
        saved = services.save_contract(
            obj.agency, obj if change else None, actor=request.user, request=request, **fields
        )
        adopt_saved(obj, saved)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PartnerUser, site=tenant_admin_site)
class PartnerUserAdmin(admin.ModelAdmin):
    """Who books for which agency, across agencies; added from the agency page (by email)."""

    list_display = ["user", "agency", "is_agency_admin", "is_active", "created_at"]
    list_filter = ["is_active", "is_agency_admin"]
    search_fields = ["user__email", "agency__legal_name", "agency__trading_name"]
    list_select_related = ["user", "agency"]
    fields = ["user", "agency", "is_agency_admin", "is_active"]
    readonly_fields = ["user", "agency", "is_agency_admin", "is_active"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
