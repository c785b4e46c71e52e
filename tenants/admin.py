from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib import admin
from django.db import transaction

from core.errors import DomainError
from tenants import audit, services
from tenants.admin_sites import platform_admin_site, tenant_admin_site
from tenants.models import AuditEvent, Domain, Membership, PlatformAuditEvent, Tenant

if TYPE_CHECKING:
    from accounts.models import User

    _ModelAdminMixinBase = admin.ModelAdmin  # a mixin for model admins: its super() calls reach ModelAdmin
else:
    _ModelAdminMixinBase = object


def adopt_saved(obj, saved) -> None:
    """Make the admin's form instance the row a service saved, so the admin's log entry, message and redirect
    describe the real row (a service, not the form, created it)."""
    for field in saved._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False
    obj._state.db = saved._state.db


class AuditedModelAdmin(admin.ModelAdmin):
    """Records every save and delete made through the admin, with before/after values."""

    def save_model(self, request, obj, form, change):
        before = audit.snapshot(type(obj)._default_manager.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)
        audit.record(
            audit.Action.CHANGE if change else audit.Action.CREATE,
            actor=request.user,
            target=obj,
            changes=audit.diff(before, audit.snapshot(obj)),
            request=request,
        )

    def delete_model(self, request, obj):
        before = audit.snapshot(obj)
        audit.record(
            audit.Action.DELETE,
            actor=request.user,
            target=obj,
            changes=audit.diff(before, None),
            request=request,
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- shared by every back-office admin ---------------------------------------------------


class AuditedInlinesAdmin(AuditedModelAdmin):
    """Also audits the rows saved and deleted through inlines (the parent's own audit entry does not show them)."""

    def save_formset(self, request, form, formset, change):
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            audit.record(
                audit.Action.DELETE,
                actor=request.user,
                target=obj,
                changes=audit.diff(audit.snapshot(obj), None),
                request=request,
            )
            obj.delete()
        for obj in instances:
            adding = obj._state.adding
            before = None if adding else audit.snapshot(type(obj)._base_manager.get(pk=obj.pk))
            obj.save()
            audit.record(
                audit.Action.CREATE if adding else audit.Action.CHANGE,
                actor=request.user,
                target=obj,
                changes=audit.diff(before, audit.snapshot(obj)),
                request=request,
            )
        formset.save_m2m()


class ServiceErrorsAsFormErrors(_ModelAdminMixinBase):
    """Some rules can only be checked by the service against the live row (seats held right now, overlapping
    contracts), so their DomainError surfaces in ``save_model``/``save_formset``, after form validation. The admin
    write is then rolled back as a whole and the same POST is validated again with the error attached to the form,
    which shows it the way Django shows any form error, with the user's input kept."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            with transaction.atomic():
                return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as error:
            request._service_error = error
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        found: DomainError | None = getattr(request, "_service_error", None)
        if found is None:
            return form_class
        error = found  # not None, also inside the class below (mypy does not narrow into it)

        # mypy cannot check a base class chosen at run time: the admin's own form class for this request.
        class FormWithServiceError(form_class):  # type: ignore[misc, valid-type]
            def clean(self):
                data = super().clean()
                placed = False
                for name, messages in error.fields.items():
                    if name in self.fields and name in self.cleaned_data:
                        self.add_error(name, _messages(messages))
                        placed = True
                self.add_error(None, error.message if placed or not error.fields else _flatten(error))
                return data

        return FormWithServiceError


def _messages(value) -> list[str]:
    return [str(value)] if isinstance(value, str) else [str(message) for message in value]


def _flatten(error: DomainError) -> str:
    details = "; ".join(f"{name}: {' '.join(_messages(msgs))}" for name, msgs in error.fields.items())
    return f"{error.message} ({details})" if details else error.message


# --- back office (tenant hosts) -------------------------------------------------------------------------------


class MembershipForm(forms.ModelForm):
    actor: User | None = None  # set per request by MembershipAdmin.get_form

    class Meta:
        model = Membership
        fields = ["role", "is_active"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what ModelForm.clean returns
        current = self.instance.role if self.instance.pk else None
        try:
            services.check_may_assign(self.actor, data.get("role") or current, current)
            if self.instance.pk:
                services.check_keeps_an_owner(self.instance, data.get("role"), data.get("is_active", True))
        except DomainError as error:
            raise forms.ValidationError(error.message) from error
        return data


class MembershipAddForm(MembershipForm):
    email = forms.EmailField(help_text="They receive an email: someone new gets a link to choose a password.")
    full_name = forms.CharField(required=False, max_length=200)

    class Meta(MembershipForm.Meta):
        fields = ["role"]

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if Membership.objects.filter(user__email=email).exists():
            raise forms.ValidationError("This person is already a member of the team.")
        return email


@admin.register(Membership, site=tenant_admin_site)
class MembershipAdmin(ServiceErrorsAsFormErrors, admin.ModelAdmin):
    list_display = ["user", "role", "is_active", "created_at"]
    list_filter = ["role", "is_active"]
    search_fields = ["user__email", "user__full_name"]

    def get_queryset(self, request):
        return Membership.objects.select_related("user")

    def get_fields(self, request, obj=None):
        return ["email", "full_name", "role"] if obj is None else ["role", "is_active"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = MembershipAddForm if obj is None else MembershipForm
        # modelform_factory subclasses the form given in kwargs["form"]
        form_class = cast(type[MembershipForm], super().get_form(request, obj, change=change, **kwargs))
        form_class.actor = request.user
        return form_class

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            saved = services.change_member(
                obj, actor=request.user, role=data["role"], is_active=data["is_active"], request=request
            )
        else:
            saved = services.add_member(
                email=data["email"],
                full_name=data.get("full_name", ""),
                role=data["role"],
                actor=request.user,
                request=request,
            )
        adopt_saved(obj, saved)

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate instead: the audit trail keeps pointing at a real membership


@admin.register(AuditEvent, site=tenant_admin_site)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor_label", "action", "target_type", "target_label", "ip_address"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor_label", "target_label", "target_id"]
    date_hierarchy = "created_at"

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("tenants.view_auditevent")


# --- platform admin (platform host) ---------------------------------------------------------------------------


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


class TenantCreateForm(forms.ModelForm):
    host = forms.CharField(help_text="Primary host name, e.g. acme.tourops.example")
    owner_email = forms.EmailField(help_text="The first owner; gets an account if the address is new.")

    class Meta:
        model = Tenant
        fields = ["slug", "name", "kind", "base_currency", "time_zone", "default_language"]

    def clean_host(self):
        host = self.cleaned_data["host"].strip().lower()
        if Domain.objects.filter(host=host).exists():
            raise forms.ValidationError("This host name is already in use.")
        return host


# What documents and emails print about the business, and its booking policies.
TENANT_BUSINESS_FIELDS = [
    "legal_name",
    "legal_address",
    "tax_id",
    "contact_email",
    "contact_phone",
    "traveller_details_cutoff_hours",
    "availability_limited_percent",
]


@admin.register(Tenant, site=platform_admin_site)
class TenantAdmin(AuditedModelAdmin):
    list_display = ["name", "slug", "kind", "base_currency", "time_zone", "status", "created_at"]
    list_filter = ["kind", "status"]
    search_fields = ["name", "slug", "domains__host"]
    inlines = [DomainInline]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = TenantCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        base = ["slug", "name", "kind", "base_currency", "time_zone", "default_language"]
        if obj is None:
            return [*base, "host", "owner_email"]
        return [*base, "status", *TENANT_BUSINESS_FIELDS]

    def get_inlines(self, request, obj):
        return [DomainInline] if obj is not None else []

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        data = form.cleaned_data
        created = services.create_tenant(
            slug=data["slug"],
            name=data["name"],
            kind=data["kind"],
            base_currency=data["base_currency"],
            time_zone=data["time_zone"],
            default_language=data["default_language"],
            host=data["host"],
            owner_email=data["owner_email"],
            actor=request.user,
            request=request,
        )
        adopt_saved(obj, created)

    def has_delete_permission(self, request, obj=None):
        return False  # suspend instead; deleting a business's history is a data-retention decision


@admin.register(PlatformAuditEvent, site=platform_admin_site)
class PlatformAuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor_label", "action", "target_type", "target_label", "ip_address"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor_label", "target_label"]
