"""Money received for bookings and given back.

- ``Payment``: one row per attempt (pretix's OrderPayment idea). Offline payments (a bank transfer staff saw, cash)
  are succeeded when recorded. A gateway attempt is recorded ``created`` and committed, then the gateway is called
  and its answer recorded (``pending`` → ``succeeded`` / ``failed`` / ``cancelled``); webhooks and the
  reconciliation task bring any attempt left behind by a crash to the gateway's truth.
- ``Refund``: one row per payment refunded (a refund larger than one payment is split across several).
  ``Payment.refunded`` reserves what pending and succeeded refunds take, so the database itself refuses refunding
  more than was captured.
- ``PaymentTerms`` → ``PaymentSchedule`` + ``Installment``: pay in full, a deposit then the balance, or equal
  installments; later installments are charged off-session on the saved card.
- ``GatewayAccount``: a tenant's own Stripe / PayPal credentials (secrets encrypted like PII).
- ``WebhookEvent``: every verified gateway event, once (replays are ignored).
- ``ExchangeRate``: rates for reporting in the tenant's base currency (a customer is never charged converted).

``Booking.paid`` (succeeded payments minus succeeded refunds) moves only in ``payments.services.paid``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from core.currencies import CURRENCY_CHOICES
from core.ids import uuid7
from core.pii.fields import EncryptedTextField
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
        PAYPAL = "paypal", "PayPal"
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
    capture_reference = models.CharField(
        max_length=255, blank=True, help_text="What refunds are made against: Stripe charge, PayPal capture."
    )
    installment = models.ForeignKey(
        "payments.Installment", on_delete=models.SET_NULL, null=True, blank=True, related_name="payments"
    )
    off_session = models.BooleanField(default=False, help_text="Charged on the saved card, payer absent.")
    payment_method_summary = models.CharField(max_length=100, blank=True)
    refunded = models.BigIntegerField(
        default=0, help_text="Minor units taken by pending and succeeded refunds of this payment."
    )
    failure_code = models.CharField(max_length=60, blank=True)
    failure_reason = models.CharField(max_length=500, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["tenant", "booking"], name="payment_tenant_booking"),
            models.Index(
                fields=["tenant", "updated_at"],
                name="payment_unsettled",
                condition=Q(status__in=["created", "pending"]),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            # The last line against refunding more than was taken, whatever the code above it does.
            models.CheckConstraint(
                condition=Q(refunded__gte=0) & Q(refunded__lte=F("amount")),
                name="payment_refunded_within_amount",
            ),
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

    @property
    def refundable(self) -> int:
        return self.amount - self.refunded if self.status == self.Status.SUCCEEDED else 0

    @property
    def is_settled(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED, self.Status.CANCELLED)


class Refund(TenantModel):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Kind(models.TextChoices):
        """Why the money goes back: a goodwill refund is credited on the invoice; a cancellation is credited by
        the cancellation's own credit note; a surplus (paid twice, or for a lapsed booking) was never invoiced.
        One made at the gateway (its dashboard) is taken as goodwill: staff gave it, so it is not asked for
        again, and it is credited on the invoice. A reversal (the gateway took the money back: a dispute) is
        neither: the amount is still owed, and staff look at it."""

        GOODWILL = "goodwill", "Goodwill (staff)"
        CANCELLATION = "cancellation", "Cancellation policy"
        SURPLUS = "surplus", "Money received for nothing"
        GATEWAY = "gateway", "Made at the gateway (dashboard)"
        REVERSAL = "reversal", "Taken back by the gateway (dispute)"

        @classmethod
        def gestures(cls) -> tuple[str, ...]:
            """Kinds that lower what the customer owes and are credited on the invoice."""
            return (cls.GOODWILL, cls.GATEWAY)

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    booking = models.ForeignKey("bookings.Booking", on_delete=models.PROTECT, related_name="refunds")
    amount = models.BigIntegerField(help_text="Minor units of the payment's currency; always positive.")
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.GOODWILL)
    provider_reference = models.CharField(max_length=255, blank=True)
    request_key = models.CharField(
        max_length=120,
        help_text="The refund request this row is part of (one request may refund several payments).",
    )
    idempotency_key = models.CharField(
        max_length=200, help_text="request key + payment: sent to the gateway."
    )
    reason = models.CharField(max_length=500)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    failure_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["tenant", "booking"], name="refund_tenant_booking"),
            models.Index(fields=["tenant", "request_key"], name="refund_tenant_request"),
            models.Index(
                fields=["tenant", "updated_at"], name="refund_pending", condition=Q(status="pending")
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"], name="refund_unique_idempotency_key"
            ),
        ]

    def __str__(self) -> str:
        return f"Refund {self.amount} {self.currency} ({self.get_status_display().lower()})"


def default_retry_days() -> list[int]:
    return [1, 3, 7]


DEFAULT_REMINDER_DAYS = 7
MAX_REMINDER_DAYS = 30


class PaymentTerms(TenantModel):
    """How a booking is paid for: the tour's terms, else the tenant's default, else in full at booking."""

    class Kind(models.TextChoices):
        FULL = "full", "Pay in full at booking"
        DEPOSIT = "deposit", "Deposit now, balance before departure"
        INSTALLMENTS = "installments", "Equal installments"

    class AfterFinalFailure(models.TextChoices):
        CANCEL = "cancel", "Cancel the booking (its cancellation terms apply)"
        FLAG = "flag", "Flag the booking for staff"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.DEPOSIT)
    is_default = models.BooleanField(default=False, help_text="Used for tours without terms of their own.")
    deposit_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(99)],
        help_text="Deposit as a percentage of the total…",
    )
    deposit_amount = models.BigIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="…or a fixed deposit (minor units)",
    )
    deposit_currency = models.CharField(
        max_length=3,
        choices=CURRENCY_CHOICES,
        blank=True,
        help_text="…in this currency (only for bookings in it).",
    )
    installment_count = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(2), MaxValueValidator(12)]
    )
    balance_days_before = models.PositiveSmallIntegerField(
        default=30, help_text="The balance (or last installment) is due this many days before departure."
    )
    retry_days = ArrayField(
        models.PositiveSmallIntegerField(),
        default=default_retry_days,
        blank=True,
        help_text="Days after each failed automatic charge to try again (1, 3, 7: the next day, 3 days later, "
        "then a week later); empty: no retries.",
    )
    after_final_failure = models.CharField(
        max_length=8, choices=AfterFinalFailure.choices, default=AfterFinalFailure.FLAG
    )
    reminder_days_before = models.PositiveSmallIntegerField(
        default=DEFAULT_REMINDER_DAYS,
        validators=[MaxValueValidator(MAX_REMINDER_DAYS)],
        help_text="Days before each later installment (or the balance) is due to tell the payer what will be "
        "charged or is to be paid; 0: no such reminder.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "payment terms"
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="paymentterms_unique_name"),
            models.UniqueConstraint(
                fields=["tenant"], condition=Q(is_default=True), name="paymentterms_one_default"
            ),
            models.CheckConstraint(
                condition=~Q(kind="deposit")
                | Q(deposit_percent__isnull=False)
                | Q(deposit_amount__isnull=False),
                name="paymentterms_deposit_has_amount",
            ),
            models.CheckConstraint(
                condition=Q(deposit_amount__isnull=True) | ~Q(deposit_currency=""),
                name="paymentterms_fixed_deposit_has_currency",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PaymentSchedule(TenantModel):
    """A booking's payment plan, frozen from its terms when it was made (later edits of the terms do not move
    it). Which installments are paid is not stored: the booking's net paid covers them in order."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    booking = models.OneToOneField("bookings.Booking", on_delete=models.CASCADE, related_name="schedule")
    kind = models.CharField(max_length=12, choices=PaymentTerms.Kind.choices)
    terms = models.JSONField(default=dict, help_text="The terms as they were when the booking was made.")
    customer_reference = models.CharField(max_length=255, blank=True, help_text="Stripe customer (cus_…).")
    payment_method_reference = models.CharField(
        max_length=255, blank=True, help_text="Saved card (pm_…) for off-session installments."
    )
    payment_method_summary = models.CharField(max_length=100, blank=True)
    needs_attention = models.BooleanField(
        default=False, help_text="An automatic charge failed for good: staff decide (see the booking)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.booking_id})"


class Installment(TenantModel):
    class Kind(models.TextChoices):
        FULL = "full", "Full payment"
        DEPOSIT = "deposit", "Deposit"
        BALANCE = "balance", "Balance"
        INSTALLMENT = "installment", "Installment"

    class Dunning(models.TextChoices):
        NONE = "", "—"
        FAILED = "failed", "Charge failed, retrying"
        FINAL_NOTICE = "final_notice", "Final notice sent"
        GAVE_UP = "gave_up", "Retries exhausted"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    schedule = models.ForeignKey(PaymentSchedule, on_delete=models.CASCADE, related_name="installments")
    sequence = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=12, choices=Kind.choices)
    due_on = models.DateField(help_text="Due on this day (the first one: at booking).")
    amount = models.BigIntegerField(validators=[MinValueValidator(0)])
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Automatic charges tried.")
    # Attempts whose failure was acted on (retry planned, payer emailed, or given up): a run overlapping another
    # that re-sends the same attempt learns the same failure and must not dun for it twice.
    attempts_dunned = models.PositiveSmallIntegerField(default=0, editable=False)
    next_attempt_on = models.DateField(null=True, blank=True)
    dunning = models.CharField(max_length=12, choices=Dunning.choices, blank=True, default="")
    last_failure = models.CharField(max_length=500, blank=True)
    reminded_for = models.DateField(
        null=True, blank=True, editable=False, help_text="The due day the payer was last reminded of."
    )

    class Meta:
        ordering = ["schedule", "sequence"]
        indexes = [models.Index(fields=["tenant", "due_on"], name="installment_tenant_due")]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "schedule", "sequence"], name="installment_unique_sequence"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="installment_amount_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} due {self.due_on}"


class GatewayAccount(TenantModel):
    """A tenant's own account at a gateway. Secrets are encrypted bound to the tenant (a copied ciphertext does
    not decrypt for another tenant) and never shown back in the admin."""

    class Provider(models.TextChoices):
        STRIPE = "stripe", "Stripe"
        PAYPAL = "paypal", "PayPal"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    provider = models.CharField(max_length=12, choices=Provider.choices)
    is_active = models.BooleanField(default=True)
    live = models.BooleanField(default=False, help_text="Live money; off for test/sandbox keys.")
    public_key = models.CharField(
        max_length=255, blank=True, help_text="Stripe publishable key (pk_…) or PayPal client id."
    )
    secret_key = EncryptedTextField(
        max_length=255, help_text="Stripe secret key (sk_…) or PayPal client secret."
    )
    webhook_secret = EncryptedTextField(
        max_length=255,
        blank=True,
        help_text="Stripe webhook signing secret (whsec_…); PayPal: the webhook id.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "provider"], name="gatewayaccount_one_per_provider")
        ]

    def __str__(self) -> str:
        mode = "live" if self.live else "test"
        return f"{self.get_provider_display()} ({mode})"


class WebhookEvent(TenantModel):
    """A verified gateway event. Its unique id makes a replayed delivery a no-op; only what the event is about is
    kept (the event is a trigger: the object is re-fetched from the gateway), not its body."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    provider = models.CharField(max_length=12, choices=GatewayAccount.Provider.choices)
    event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=100)
    object_kind = models.CharField(max_length=12)
    object_reference = models.CharField(max_length=255, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "provider", "event_id"], name="webhookevent_unique_event"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_type} {self.event_id}"


class ExchangeRate(TenantModel):
    """1 ``base`` = ``rate`` ``quote`` on ``valid_on`` (entered by staff or imported). Reporting only."""

    class Source(models.TextChoices):
        MANUAL = "manual", "Entered by staff"
        IMPORTED = "imported", "Imported"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    base = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    quote = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    rate = models.DecimalField(max_digits=20, decimal_places=10, validators=[MinValueValidator(0)])
    valid_on = models.DateField()
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    note = models.CharField(
        max_length=200, blank=True, help_text="Where the rate comes from, e.g. ECB reference rate."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-valid_on", "base", "quote"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "base", "quote", "valid_on"], name="exchangerate_unique_day"
            ),
            models.CheckConstraint(condition=Q(rate__gt=0), name="exchangerate_rate_positive"),
            models.CheckConstraint(condition=~Q(base=F("quote")), name="exchangerate_distinct_currencies"),
        ]

    def __str__(self) -> str:
        return f"1 {self.base} = {self.rate} {self.quote} ({self.valid_on})"
