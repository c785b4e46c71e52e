"""The trade side: partner agencies that sell the tenant's tours, their users and their contracts."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from core.currencies import CURRENCY_CHOICES
from core.ids import uuid7
from core.money import Money
from core.validators import validate_country
from tenants.models import TenantManager, TenantModel


class Agency(TenantModel):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended (cannot book)"
        CLOSED = "closed", "Closed"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    legal_name = models.CharField(max_length=200)
    trading_name = models.CharField(max_length=200, blank=True)
    country = models.CharField(
        max_length=2, validators=[validate_country], help_text="ISO 3166 code, e.g. FR"
    )
    tax_id = models.CharField("tax id", max_length=50, blank=True)
    currency = models.CharField(
        max_length=3, choices=CURRENCY_CHOICES, help_text="Currency it is invoiced in."
    )
    email = models.EmailField(help_text="Bookings and statements go here.")
    phone = models.CharField(max_length=32, blank=True)
    address = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "agencies"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "legal_name"], name="agency_unique_legal_name")
        ]
        indexes = [models.Index(fields=["tenant", "status"], name="agency_tenant_status")]

    def __str__(self) -> str:
        return self.trading_name or self.legal_name

    @property
    def can_book(self) -> bool:
        return self.status == self.Status.ACTIVE


class AgencyContact(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(max_length=200)
    job_title = models.CharField(max_length=100, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=32, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "agency"], name="agencycontact_tenant_agency")]

    def __str__(self) -> str:
        return self.name


class PartnerUserQuerySet(models.QuerySet):
    def able_to_book(self) -> PartnerUserQuerySet:
        """Active bookers of agencies that are not closed."""
        return self.filter(is_active=True).exclude(agency__status=Agency.Status.CLOSED)


class PartnerUser(TenantModel):
    """A person who books for an agency. Signs in to the trade portal only (never the back office: that needs a
    staff Membership), and sees only its own agency's bookings, allotments and statements."""

    objects = TenantManager.from_queryset(PartnerUserQuerySet)()

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="partner_accounts"
    )
    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="users")
    is_agency_admin = models.BooleanField(default=False, help_text="May manage the agency's other users.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="one_partner_account_per_tenant")
        ]
        indexes = [models.Index(fields=["tenant", "agency"], name="partneruser_tenant_agency")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.agency}"


class Contract(TenantModel):
    class Model(models.TextChoices):
        NET_RATE = "net", "Net rates (agency adds its own margin)"
        COMMISSION = "commission", "Commission on retail price"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="contracts")
    model = models.CharField(max_length=10, choices=Model.choices)
    commission_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="For the commission model: percent of the retail price kept by the agency.",
    )
    payment_terms_days = models.PositiveSmallIntegerField(
        default=30, help_text="Days to pay an on-account booking."
    )
    credit_limit = models.BigIntegerField(
        default=0, validators=[MinValueValidator(0)], help_text="In minor units of the agency's currency."
    )
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=F("valid_from")),
                name="contract_dates_in_order",
            ),
            models.CheckConstraint(
                condition=Q(commission_percent__gte=0, commission_percent__lte=100),
                name="contract_commission_range",
            ),
            models.CheckConstraint(condition=Q(credit_limit__gte=0), name="contract_credit_not_negative"),
        ]
        indexes = [
            models.Index(fields=["tenant", "agency", "valid_from"], name="contract_tenant_agency_from")
        ]

    def __str__(self) -> str:
        return f"{self.agency} · {self.get_model_display()} from {self.valid_from}"

    @property
    def credit_limit_money(self) -> Money:
        return Money(self.credit_limit, self.agency.currency)
