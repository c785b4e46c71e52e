"""Bookings: the contract between a traveller (or an agency) and the operator.

Personal data (lead customer, travellers, consent IP) is stored encrypted with the tenant/table/column bound into
the ciphertext; the lead's email also has a blind index for "find my booking" lookups. Totals are integer minor
units of ``currency``; each item keeps the quote snapshot it was sold at, so later price changes never alter it.
Statuses move only through ``bookings.services`` (one function per transition), which also writes the status
history and the outbox event.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q

from core.currencies import CURRENCY_CHOICES
from core.ids import uuid7
from core.pii.fields import BlindIndexField, EncryptedBinaryField, EncryptedTextField
from tenants.models import TenantModel

# No 0/O, 1/I/L: a reference is read out over the phone and typed from a voucher.
REFERENCE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
REFERENCE_LENGTH = 8  # 31^8 ≈ 8.5e11: unguessable by trying, short enough to say


def new_reference() -> str:
    return "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))


class Booking(TenantModel):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ON_HOLD = "on_hold", "On hold"
        AWAITING_PAYMENT = "awaiting_payment", "Awaiting payment"
        CONFIRMED = "confirmed", "Confirmed"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"
        REFUNDED = "refunded", "Refunded"
        NO_SHOW = "no_show", "No-show"

    class Channel(models.TextChoices):
        RETAIL = "retail", "Retail site"
        TRADE = "trade", "Trade (partner agency)"
        BACK_OFFICE = "back_office", "Back office"
        API = "api", "API"
        OCTO = "octo", "OCTO reseller"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    reference = models.CharField(max_length=REFERENCE_LENGTH, default=new_reference, editable=False)
    channel = models.CharField(max_length=12, choices=Channel.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT, editable=False)
    language = models.CharField(max_length=8, help_text="Emails and documents are in this language.")
    lead_name = EncryptedTextField(max_length=200)
    lead_email = EncryptedTextField(max_length=254)
    lead_email_index = BlindIndexField(source="lead_email")
    lead_phone = EncryptedTextField(max_length=32, blank=True)
    agency = models.ForeignKey(
        "partners.Agency", on_delete=models.PROTECT, null=True, blank=True, related_name="bookings"
    )
    agent_reference = models.CharField(max_length=64, blank=True, help_text="The agency's own file number.")
    on_account = models.BooleanField(
        default=False, help_text="Trade: invoiced to the agency, paid by statement."
    )
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    total = models.BigIntegerField(default=0, validators=[MinValueValidator(0)], help_text="Minor units.")
    paid = models.BigIntegerField(default=0, help_text="Minor units received, net of refunds.")
    cancellation_charge = models.BigIntegerField(
        null=True, blank=True, help_text="Minor units the customer owes for cancelling (set when cancelled)."
    )
    internal_notes = models.TextField(
        blank=True, help_text="Staff only; never shown to the traveller or agency."
    )
    idempotency_key = models.CharField(max_length=100, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="While on hold: when the seats lapse.")
    confirmed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "reference"], name="booking_unique_reference"),
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"],
                name="booking_unique_idempotency_key",
                condition=~Q(idempotency_key=""),
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="booking_total_not_negative"),
            models.CheckConstraint(
                condition=Q(agency__isnull=False) | Q(on_account=False),
                name="booking_on_account_needs_agency",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "status", "created_at"], name="booking_tenant_status_created"),
            models.Index(fields=["tenant", "agency", "status"], name="booking_tenant_agency_status"),
            models.Index(fields=["tenant", "lead_email_index"], name="booking_tenant_lead_email"),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def balance(self) -> int:
        return self.total - self.paid


class BookingItem(TenantModel):
    """Seats on one departure, with the quote they were sold at."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="items")
    departure = models.ForeignKey(
        "inventory.Departure", on_delete=models.PROTECT, related_name="booking_items"
    )
    option = models.ForeignKey("tours.Option", on_delete=models.PROTECT, related_name="+")
    hold = models.OneToOneField(
        "inventory.Hold", on_delete=models.PROTECT, null=True, blank=True, related_name="booking_item"
    )
    units = models.JSONField(help_text='Unit type code → count, e.g. {"adult": 2}.')
    seats = models.PositiveIntegerField()
    quote = models.JSONField(help_text="tours.pricing.Quote.as_snapshot() at the time of sale.")
    total = models.BigIntegerField(validators=[MinValueValidator(0)])

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "booking"], name="bookingitem_tenant_booking"),
            models.Index(fields=["tenant", "departure"], name="bookingitem_tenant_departure"),
        ]

    def __str__(self) -> str:
        return f"{self.booking} · {self.departure}"


class Traveller(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="travellers")
    item = models.ForeignKey(
        BookingItem, on_delete=models.CASCADE, null=True, blank=True, related_name="travellers"
    )
    unit_code = models.CharField(max_length=30)
    first_name = EncryptedTextField(max_length=100)
    last_name = EncryptedTextField(max_length=100)
    date_of_birth = EncryptedTextField(max_length=10, blank=True, help_text="YYYY-MM-DD")
    nationality = models.CharField(max_length=2, blank=True)
    passport_number = EncryptedTextField(max_length=40, blank=True)
    dietary_notes = EncryptedTextField(max_length=500, blank=True)
    medical_notes = EncryptedTextField(max_length=500, blank=True)
    answers = EncryptedTextField(
        max_length=5000, blank=True, help_text="JSON: booking question code → answer."
    )
    checked_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "booking"], name="traveller_tenant_booking")]

    def __str__(self) -> str:
        return f"{self.unit_code} traveller of {self.booking}"


class StatusChange(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="status_history")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    reason = models.CharField(max_length=500, blank=True)
    actor_label = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["tenant", "booking", "created_at"], name="statuschange_tenant_booking")
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(from_status=F("to_status")), name="statuschange_changes_status"
            )
        ]

    def __str__(self) -> str:
        return f"{self.booking}: {self.from_status or '–'} → {self.to_status}"


class Consent(TenantModel):
    """What the lead customer agreed to, when, from where (GDPR: the proof of consent)."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="consents")
    terms_version = models.CharField(max_length=40)
    marketing_opt_in = models.BooleanField(default=False)
    accepted_at = models.DateTimeField()
    ip_address = EncryptedTextField(max_length=45, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "booking"], name="consent_tenant_booking")]

    def __str__(self) -> str:
        return f"{self.booking} accepted terms {self.terms_version}"


class InvoiceSeries(TenantModel):
    """A numbering series (one per calendar year by default). ``next_number`` moves only inside the transaction
    that writes the invoice, so a failed invoice gives its number back: numbers are gap-free."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    prefix = models.CharField(max_length=32)
    next_number = models.PositiveIntegerField(default=1)

    class Meta:
        verbose_name_plural = "invoice series"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "prefix"], name="invoiceseries_unique_prefix")
        ]

    def __str__(self) -> str:
        return f"{self.prefix} (next {self.next_number})"


class Invoice(TenantModel):
    """An invoice or a credit note. Never edited or deleted (a database trigger refuses it): a correction is a
    credit note that references the invoice."""

    append_only = True  # no UPDATE/DELETE grant for the runtime role, and a trigger refuses them for everyone

    class Kind(models.TextChoices):
        INVOICE = "invoice", "Invoice"
        CREDIT_NOTE = "credit_note", "Credit note"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    booking = models.ForeignKey(Booking, on_delete=models.PROTECT, related_name="invoices")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    series = models.CharField(max_length=32)
    number = models.PositiveIntegerField()
    credits = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="credit_notes"
    )
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    total = models.BigIntegerField(help_text="Minor units; negative on a credit note.")
    tax = models.BigIntegerField(default=0)
    lines = models.JSONField(help_text="What was invoiced, as printed (a snapshot).")
    issued_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "series", "number"], name="invoice_unique_number"),
            models.CheckConstraint(
                condition=Q(kind="invoice", credits__isnull=True)
                | Q(kind="credit_note", credits__isnull=False),
                name="invoice_credit_note_references_invoice",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "booking"], name="invoice_tenant_booking")]

    def __str__(self) -> str:
        return self.display_number

    @property
    def display_number(self) -> str:
        return f"{self.series}-{self.number:06d}"


class Document(TenantModel):
    """A generated PDF as it was issued (an invoice's PDF must not change when the tenant's details do later).
    Encrypted: vouchers and invoices name people. A voucher is issued again after a change, as a new version."""

    class Kind(models.TextChoices):
        INVOICE = "invoice", "Invoice"
        CREDIT_NOTE = "credit_note", "Credit note"
        VOUCHER = "voucher", "Voucher"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="documents"
    )
    version = models.PositiveIntegerField(default=1)
    filename = models.CharField(max_length=120)
    content = EncryptedBinaryField()
    sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(  # invoices and credit notes are one document per Invoice row instead
                fields=["tenant", "booking", "version"],
                name="document_unique_voucher_version",
                condition=Q(kind="voucher"),
            ),
            models.UniqueConstraint(
                fields=["tenant", "invoice"],
                name="document_one_per_invoice",
                condition=Q(invoice__isnull=False),
            ),
            models.CheckConstraint(
                condition=Q(kind="voucher", invoice__isnull=True)
                | (~Q(kind="voucher") & Q(invoice__isnull=False)),
                name="document_invoice_matches_kind",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "booking", "kind"], name="document_tenant_booking")]

    def __str__(self) -> str:
        return self.filename


class Notification(TenantModel):
    """One email about a booking: queued by an event consumer, sent by a task with retries, logged here.
    ``key`` makes queuing idempotent (the event id, or e.g. "reminder-48h"): a redelivered event queues nothing."""

    class Kind(models.TextChoices):
        CONFIRMATION = "confirmation", "Booking confirmation"
        RECEIPT = "receipt", "Payment receipt"
        PAYMENT_DUE = "payment_due", "Payment due"
        REMINDER = "reminder", "Reminder before departure"
        MODIFIED = "modified", "Booking changed"
        CANCELLATION = "cancellation", "Cancellation"
        PAYMENT_FAILED = "payment_failed", "Installment payment failed"
        FINAL_NOTICE = "final_notice", "Final payment notice"
        REFUND = "refund", "Refund"
        UPCOMING_PAYMENT = "upcoming_payment", "Upcoming installment"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    key = models.CharField(max_length=100)
    recipient = EncryptedTextField(max_length=254)
    language = models.CharField(max_length=8)
    subject = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "booking", "kind", "key"], name="notification_unique_key"
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "booking", "created_at"], name="notification_tenant_booking"),
            models.Index(fields=["tenant", "status", "created_at"], name="notification_tenant_status"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.booking}"
