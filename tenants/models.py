from __future__ import annotations

import re
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from core.currencies import CURRENCY_CHOICES
from core.ids import uuid7
from tenants.context import current_tenant_id, require_tenant_id
from tenants.roles import Role

_HOST_RE = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone (for example Europe/Oslo).")


def validate_host(value: str) -> None:
    if not _HOST_RE.match(value):
        raise ValidationError(
            f"{value!r} is not a valid host name (lower-case letters, digits, dots, hyphens)."
        )


class Tenant(models.Model):
    """One tour business on the platform. Platform-level: not row-level secured (routing reads it first)."""

    class Kind(models.TextChoices):
        DMC = "dmc", "Inbound DMC"
        TOUR_OPERATOR = "tour_operator", "Outbound tour operator"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    base_currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    time_zone = models.CharField(max_length=64, validators=[validate_time_zone])
    default_language = models.CharField(max_length=8, choices=settings.LANGUAGES, default="en")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    availability_limited_percent = models.PositiveSmallIntegerField(
        default=50,
        validators=[MinValueValidator(1), MaxValueValidator(99)],
        help_text="A departure with less than this share of its seats left shows as 'limited'.",
    )
    # Printed on invoices, vouchers and emails: who sells the tour, legally.
    legal_name = models.CharField(max_length=200, blank=True, help_text="Defaults to the name.")
    legal_address = models.TextField(blank=True)
    tax_id = models.CharField(max_length=40, blank=True, help_text="VAT / tax registration number.")
    contact_email = models.EmailField(blank=True, help_text="Replies to booking emails go here.")
    contact_phone = models.CharField(max_length=32, blank=True)
    traveller_details_cutoff_hours = models.PositiveSmallIntegerField(
        default=48,
        validators=[MaxValueValidator(24 * 30)],
        help_text="Travellers may change their details online until this many hours before departure.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def invoice_name(self) -> str:
        return self.legal_name or self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class Domain(models.Model):
    """A host name that routes to a tenant; exactly one per tenant is primary (used in links and emails)."""

    id = models.BigAutoField(primary_key=True)
    host = models.CharField(max_length=253, unique=True, validators=[validate_host])
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="domains")
    is_primary = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant"], condition=Q(is_primary=True), name="one_primary_domain"
            ),
        ]

    def __str__(self) -> str:
        return self.host

    def clean(self) -> None:
        self.host = (self.host or "").strip().lower()
        if self.host in settings.PLATFORM_HOSTS:
            raise ValidationError({"host": "This host name is reserved for the platform."})


class TenantManager(models.Manager):
    """Adds ``tenant_id = <current>`` so the planner uses the tenant-leading indexes.

    Row-level security is the guarantee; this filter is the speed. Without a current tenant the query is left
    alone and RLS returns nothing. The filter is applied when the queryset is built, so never build one at import
    time (a serializer or form field's ``queryset=``): use ``tenants.serializers.TenantRelatedField`` or build it
    per request.
    """

    def get_queryset(self) -> models.QuerySet:
        queryset = super().get_queryset()
        tenant_id = current_tenant_id()
        return queryset.filter(tenant_id=tenant_id) if tenant_id is not None else queryset


class TenantModel(models.Model):
    """Base of every tenant-owned table: ``tenant_id uuid NOT NULL``, RLS enabled + forced by its migration."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+", editable=False)

    objects = TenantManager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        if self.tenant_id is None:
            self.tenant_id = require_tenant_id()
        super().save(*args, **kwargs)


class Membership(TenantModel):
    """A user's role in one tenant. A user may belong to several tenants and acts in the one of the host."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="one_membership_per_tenant")]
        indexes = [models.Index(fields=["tenant", "role"], name="membership_tenant_role")]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()})"


class AuditRecord(models.Model):
    """Who did what, when, with the before/after of each changed field. Append-only (a trigger refuses updates
    and deletes; the runtime role has no UPDATE/DELETE grant either)."""

    class Action(models.TextChoices):
        CREATE = "create", "Created"
        CHANGE = "change", "Changed"
        DELETE = "delete", "Deleted"
        LOGIN = "login", "Signed in"
        LOGIN_FAILED = "login_failed", "Sign-in failed"
        LOGOUT = "logout", "Signed out"
        LOCKED_OUT = "locked_out", "Locked out"
        MFA_ENROLLED = "mfa_enrolled", "MFA enrolled"
        MFA_FAILED = "mfa_failed", "MFA code rejected"
        RECOVERY_CODES = "recovery_codes", "Recovery codes issued"
        RECOVERY_CODE_USED = "recovery_code_used", "Recovery code used"
        PASSWORD_SET = "password_set", "Password set by link"

    append_only = True  # no UPDATE/DELETE grant for the runtime role, and a trigger refuses them for everyone

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=False)
    # Plain values, not foreign keys: an audit row must outlive the user and the object it describes.
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=32, choices=Action.choices)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=300, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target_label}"


class AuditEvent(AuditRecord, TenantModel):
    class Meta(AuditRecord.Meta):
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="audit_tenant_created"),
            models.Index(fields=["tenant", "target_type", "target_id"], name="audit_tenant_target"),
        ]


class PlatformAuditEvent(AuditRecord):
    """Audit of platform-admin actions (tenants, domains, users), which belong to no tenant."""

    class Meta(AuditRecord.Meta):
        indexes = [models.Index(fields=["-created_at"], name="platform_audit_created")]
