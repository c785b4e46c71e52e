"""Back office for partner agencies: the agency, its contacts, its contracts and the people who book for it.

Agencies, contracts and bookers are written through ``partners.services`` (which validate and audit); contacts are
plain audited rows. The agency's statement (what it owes on account) is a back-office page of its own
(``portals.backoffice.partners``).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin

from partners import services
from partners.models import Agency, AgencyContact, Contract, PartnerUser
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


@admin.register(Agency, site=tenant_admin_site)
class AgencyAdmin(ServiceErrorsAsFormErrors, AuditedInlinesAdmin):
    list_display = ["legal_name", "trading_name", "country", "currency", "status", "email", "created_at"]
    list_filter = ["status", "country", "currency"]
    search_fields = ["legal_name", "trading_name", "email", "tax_id"]
    inlines = [AgencyContactInline, ContractInline, PartnerUserInline]
    change_form_template = "admin/partners/agency/change_form.html"

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
