"""Money received for bookings: one ``Payment`` row per attempt (pretix's OrderPayment idea).

Issue 6 records only offline payments (staff saw a bank transfer or took cash), which are succeeded the moment
they are recorded. Issue 7 adds the gateways (Stripe, PayPal): an attempt is recorded as ``created``, committed,
then the gateway is called and the outcome recorded (``pending`` → ``succeeded`` / ``failed`` / ``cancelled``);
refunds become ``Refund`` rows against a payment. ``Booking.paid`` moves only with a succeeded payment (and, later,
a refund), in ``payments.services``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.currencies import CURRENCY_CHOICES
from core.ids import uuid7
from tenants.models import TenantModel


class Payment(TenantModel):
    class Provider(models.TextChoices):
        OFFLINE = "offline", "Offline (recorded by staff)"
        STRIPE = "stripe", "Stripe"
        PAYPAL = "paypal", "PayPal"

    class Method(models.TextChoices):
        BANK_TRANSFER = "bank_transfer", "Bank transfer"
        CASH = "cash", "Cash"
        CARD = "card", "Card"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        CREATED = "created", "Created"
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    booking = models.ForeignKey("bookings.Booking", on_delete=models.PROTECT, related_name="payments")
    provider = models.CharField(max_length=12, choices=Provider.choices)
    method = models.CharField(max_length=20, choices=Method.choices)
    amount = models.BigIntegerField(help_text="Minor units of the currency; always positive.")
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.CREATED)
    provider_reference = models.CharField(
        max_length=255,
        blank=True,
        help_text="The gateway's id of this payment, or the bank/receipt reference of an offline one.",
    )
    idempotency_key = models.CharField(max_length=100, blank=True)
    failure_reason = models.CharField(max_length=500, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["tenant", "booking"], name="payment_tenant_booking")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=~Q(status="succeeded") | Q(succeeded_at__isnull=False),
                name="payment_succeeded_has_time",
            ),
            # One bank transfer (or gateway payment) is never counted twice.
            models.UniqueConstraint(
                fields=["tenant", "provider", "provider_reference"],
                name="payment_unique_provider_reference",
                condition=~Q(provider_reference=""),
            ),
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"],
                name="payment_unique_idempotency_key",
                condition=~Q(idempotency_key=""),
            ),
        ]

    def __str__(self) -> str:
        reference = f" {self.provider_reference}" if self.provider_reference else ""
        return f"{self.get_method_display()}{reference} ({self.get_status_display().lower()})"
