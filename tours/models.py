"""What a tenant sells: tours, their options (variants), unit types (who travels), booking questions, and prices.

Text shown to travellers is written in the tenant's default language on the tour itself; other languages live in
``TourTranslation`` rows (own model rather than django-modeltranslation: languages are per tenant, not a project-wide
list of columns, and each translation row carries its own full-text search vector in its own language).
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from core.currencies import CURRENCY_CHOICES
from core.ids import uuid7
from core.money import Money
from core.validators import validate_country
from tenants.models import TenantModel


class Channel(models.TextChoices):
    RETAIL = "retail", "Retail (travellers)"
    TRADE = "trade", "Trade (partner agencies)"


class Destination(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100)
    country = models.CharField(max_length=2, validators=[validate_country])

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "slug"], name="destination_unique_slug")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Category(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100)

    class Meta:
        verbose_name_plural = "categories"
        constraints = [models.UniqueConstraint(fields=["tenant", "slug"], name="category_unique_slug")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Tour(TenantModel):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        ARCHIVED = "archived", "Archived"

    class Difficulty(models.TextChoices):
        EASY = "easy", "Easy"
        MODERATE = "moderate", "Moderate"
        CHALLENGING = "challenging", "Challenging"
        STRENUOUS = "strenuous", "Strenuous"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    slug = models.SlugField(max_length=120)
    title = models.CharField(max_length=200)
    summary = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True, help_text="Formatted text (paragraphs, lists, links).")
    inclusions = models.TextField(blank=True, help_text="One item per line.")
    exclusions = models.TextField(blank=True, help_text="One item per line.")
    meeting_point = models.CharField(max_length=300, blank=True)
    meeting_latitude = models.DecimalField(
        max_digits=8,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(-90), MaxValueValidator(90)],
    )
    meeting_longitude = models.DecimalField(
        max_digits=9,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(-180), MaxValueValidator(180)],
    )
    duration_minutes = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    languages = ArrayField(
        models.CharField(max_length=8), default=list, blank=True, help_text="Guiding languages."
    )
    difficulty = models.CharField(max_length=12, choices=Difficulty.choices, default=Difficulty.EASY)
    time_zone = models.CharField(
        max_length=64, help_text="Where the tour starts; departure times are shown in it."
    )
    destination = models.ForeignKey(
        Destination, on_delete=models.PROTECT, null=True, blank=True, related_name="tours"
    )
    categories = models.ManyToManyField(Category, blank=True, related_name="tours", through="TourCategory")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    payment_terms = models.ForeignKey(
        "payments.PaymentTerms",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="tours",
        help_text="How bookings of this tour are paid; empty: the default payment terms.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "slug"], name="tour_unique_slug")]
        indexes = [
            models.Index(
                fields=["tenant", "destination"],
                name="tour_published_destination",
                condition=Q(status="published"),
            ),
        ]

    def __str__(self) -> str:
        return self.title


class TourCategory(TenantModel):
    id = models.BigAutoField(primary_key=True)
    tour = models.ForeignKey(Tour, on_delete=models.CASCADE)
    category = models.ForeignKey(Category, on_delete=models.CASCADE)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "tour", "category"], name="tourcategory_unique")
        ]

    def __str__(self) -> str:
        return f"{self.tour_id} · {self.category_id}"


class TourTranslation(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    tour = models.ForeignKey(Tour, on_delete=models.CASCADE, related_name="translations")
    language = models.CharField(max_length=8)
    title = models.CharField(max_length=200)
    summary = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True)
    inclusions = models.TextField(blank=True)
    exclusions = models.TextField(blank=True)
    meeting_point = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "tour", "language"], name="tourtranslation_one_per_language"
            )
        ]

    def __str__(self) -> str:
        return f"{self.title} [{self.language}]"


class ItineraryDay(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    tour = models.ForeignKey(Tour, on_delete=models.CASCADE, related_name="itinerary")
    day = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "tour", "day"], name="itinerary_one_per_day")
        ]
        ordering = ["day"]

    def __str__(self) -> str:
        return f"Day {self.day}: {self.title}"


class TourImage(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    tour = models.ForeignKey(Tour, on_delete=models.CASCADE, related_name="images")
    image = models.ImageField(upload_to="tours/%Y/%m/")
    alt_text = models.CharField(max_length=200, help_text="What the picture shows, for screen readers.")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position"]
        indexes = [models.Index(fields=["tenant", "tour", "position"], name="tourimage_tenant_tour_pos")]

    def __str__(self) -> str:
        return self.alt_text


class CancellationTier(TenantModel):
    """Refund percent when cancelled at least ``days_before`` days before departure; the tier with the largest
    ``days_before`` that the cancellation meets applies (none met → no refund)."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    tour = models.ForeignKey(Tour, on_delete=models.CASCADE, related_name="cancellation_tiers")
    days_before = models.PositiveSmallIntegerField()
    refund_percent = models.PositiveSmallIntegerField(validators=[MaxValueValidator(100)])

    class Meta:
        ordering = ["-days_before"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "tour", "days_before"], name="cancellationtier_unique_days"
            ),
            models.CheckConstraint(
                condition=Q(refund_percent__lte=100), name="cancellationtier_percent_range"
            ),
        ]

    def __str__(self) -> str:
        return f"≥ {self.days_before} days: {self.refund_percent} %"


class Option(TenantModel):
    """A variant of a tour sold and scheduled on its own (private vs. shared, with or without lunch)."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    tour = models.ForeignKey(Tour, on_delete=models.CASCADE, related_name="options")
    code = models.SlugField(max_length=50)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    is_private = models.BooleanField(default=False, help_text="One party per departure.")
    min_participants = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    max_participants = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Per booking; empty = up to the seats left."
    )
    is_active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "tour", "code"], name="option_unique_code"),
            models.CheckConstraint(
                condition=Q(max_participants__isnull=True) | Q(max_participants__gte=F("min_participants")),
                name="option_participants_in_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tour} · {self.name}"


class UnitType(TenantModel):
    """Who travels: adult, child, infant… with an age band and per-booking limits."""

    class Kind(models.TextChoices):
        ADULT = "adult", "Adult"
        CHILD = "child", "Child"
        INFANT = "infant", "Infant"
        YOUTH = "youth", "Youth"
        SENIOR = "senior", "Senior"
        STUDENT = "student", "Student"
        FAMILY = "family", "Family"
        OTHER = "other", "Other"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    tour = models.ForeignKey(Tour, on_delete=models.CASCADE, related_name="unit_types")
    code = models.SlugField(max_length=30)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=100)
    min_age = models.PositiveSmallIntegerField(null=True, blank=True)
    max_age = models.PositiveSmallIntegerField(null=True, blank=True)
    min_per_booking = models.PositiveSmallIntegerField(default=0)
    max_per_booking = models.PositiveSmallIntegerField(null=True, blank=True)
    counts_toward_capacity = models.BooleanField(default=True, help_text="Off for e.g. infants on a lap.")
    seats_per_unit = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="A family unit may take several seats."
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "tour", "code"], name="unittype_unique_code"),
            models.CheckConstraint(
                condition=Q(min_age__isnull=True) | Q(max_age__isnull=True) | Q(max_age__gte=F("min_age")),
                name="unittype_ages_in_order",
            ),
            models.CheckConstraint(
                condition=Q(max_per_booking__isnull=True) | Q(max_per_booking__gte=F("min_per_booking")),
                name="unittype_limits_in_order",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def seats_for(self, count: int) -> int:
        return count * self.seats_per_unit if self.counts_toward_capacity else 0


class BookingQuestion(TenantModel):
    class Scope(models.TextChoices):
        BOOKING = "booking", "Once per booking"
        TRAVELLER = "traveller", "For each traveller"

    class Kind(models.TextChoices):
        TEXT = "text", "Text"
        CHOICE = "choice", "One of a list"
        DATE = "date", "Date"
        YES_NO = "yes_no", "Yes / no"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    tour = models.ForeignKey(Tour, on_delete=models.CASCADE, related_name="questions")
    code = models.SlugField(max_length=50)
    text = models.CharField(max_length=300)
    help_text = models.CharField(max_length=300, blank=True)
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.BOOKING)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.TEXT)
    choices = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    required = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "tour", "code"], name="bookingquestion_unique_code")
        ]

    def __str__(self) -> str:
        return self.text


# --- pricing --------------------------------------------------------------------------------------------------


class TaxRate(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    name = models.CharField(max_length=100, help_text="As printed on invoices, e.g. VAT 20 %.")
    percent = models.DecimalField(
        max_digits=6, decimal_places=3, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    inclusive = models.BooleanField(
        default=True, help_text="Prices already contain this tax (usual for retail)."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="taxrate_unique_name"),
            models.CheckConstraint(
                condition=Q(percent__gte=0, percent__lte=100), name="taxrate_percent_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PriceList(TenantModel):
    """Prices for one channel in one currency, optionally for one partner agency only. When several lists apply,
    the partner's own list wins over the channel's general one, then the higher ``priority``."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    name = models.CharField(max_length=100)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    agency = models.ForeignKey(
        "partners.Agency", on_delete=models.CASCADE, null=True, blank=True, related_name="price_lists"
    )
    tax_rate = models.ForeignKey(TaxRate, on_delete=models.PROTECT, null=True, blank=True)
    valid_from = models.DateField(null=True, blank=True, help_text="Departure dates; empty = open-ended.")
    valid_to = models.DateField(null=True, blank=True)
    priority = models.SmallIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="pricelist_unique_name"),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True)
                | Q(valid_to__isnull=True)
                | Q(valid_to__gte=F("valid_from")),
                name="pricelist_dates_in_order",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "channel", "currency"], name="pricelist_tenant_channel_cur")
        ]

    def __str__(self) -> str:
        return self.name


class Season(TenantModel):
    """A date range (and weekdays) of a price list whose rates replace the list's base rates."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    price_list = models.ForeignKey(PriceList, on_delete=models.CASCADE, related_name="seasons")
    name = models.CharField(max_length=100)
    start_date = models.DateField()
    end_date = models.DateField()
    weekdays = models.PositiveSmallIntegerField(
        default=0b1111111, help_text="Bit mask, Monday = 1, Tuesday = 2 … Sunday = 64; 127 = every day."
    )
    priority = models.SmallIntegerField(default=0, help_text="When seasons overlap, the higher one applies.")

    class Meta:
        ordering = ["start_date"]
        constraints = [
            models.CheckConstraint(condition=Q(end_date__gte=F("start_date")), name="season_dates_in_order"),
            models.CheckConstraint(
                condition=Q(weekdays__gte=1, weekdays__lte=127), name="season_weekdays_mask"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "price_list", "start_date"], name="season_tenant_list_start")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.start_date} – {self.end_date})"


class Rate(TenantModel):
    """The price of one unit type on one option, in the list's currency (minor units); ``season`` empty = base."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    price_list = models.ForeignKey(PriceList, on_delete=models.CASCADE, related_name="rates")
    season = models.ForeignKey(Season, on_delete=models.CASCADE, null=True, blank=True, related_name="rates")
    option = models.ForeignKey(Option, on_delete=models.CASCADE, related_name="rates")
    unit_type = models.ForeignKey(UnitType, on_delete=models.CASCADE, related_name="rates")
    amount = models.BigIntegerField(validators=[MinValueValidator(0)], help_text="Minor units (cents, yen…).")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "price_list", "option", "unit_type", "season"],
                name="rate_unique",
                nulls_distinct=False,
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="rate_not_negative"),
        ]
        indexes = [models.Index(fields=["tenant", "option", "price_list"], name="rate_tenant_option_list")]

    def __str__(self) -> str:
        return f"{self.unit_type} {self.amount}"

    def money(self) -> Money:
        return Money(self.amount, self.price_list.currency)


class Surcharge(TenantModel):
    """A fixed amount per booking (e.g. a private vehicle), optionally for one option only."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    price_list = models.ForeignKey(PriceList, on_delete=models.CASCADE, related_name="surcharges")
    option = models.ForeignKey(
        Option, on_delete=models.CASCADE, null=True, blank=True, related_name="surcharges"
    )
    name = models.CharField(max_length=100)
    amount = models.BigIntegerField(validators=[MinValueValidator(0)], help_text="Minor units, per booking.")

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="surcharge_not_negative")]
        indexes = [models.Index(fields=["tenant", "price_list"], name="surcharge_tenant_list")]

    def __str__(self) -> str:
        return self.name


class PromoCode(TenantModel):
    class Kind(models.TextChoices):
        PERCENT = "percent", "Percent off"
        FIXED = "fixed", "Fixed amount off"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    code = models.CharField(max_length=40, help_text="Case does not matter; stored in capitals.")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    amount = models.BigIntegerField(null=True, blank=True, validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, blank=True)
    channel = models.CharField(max_length=10, choices=Channel.choices, blank=True, help_text="Empty = any.")
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_to = models.DateTimeField(null=True, blank=True)
    max_uses = models.PositiveIntegerField(null=True, blank=True, help_text="Empty = unlimited.")
    times_used = models.PositiveIntegerField(default=0, editable=False)
    is_active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="promocode_unique_code"),
            models.CheckConstraint(
                condition=(Q(kind="percent", percent__isnull=False, amount__isnull=True))
                | (Q(kind="fixed", amount__isnull=False, percent__isnull=True) & ~Q(currency="")),
                name="promocode_value_matches_kind",
            ),
            models.CheckConstraint(
                condition=Q(max_uses__isnull=True) | Q(times_used__lte=F("max_uses")),
                name="promocode_within_limit",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def save(self, *args, **kwargs) -> None:
        self.code = self.code.strip().upper()
        super().save(*args, **kwargs)


class PromoRedemption(TenantModel):
    """One use of a promo code, by a reference (a hold now, a booking later); released when that lapses."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    promo = models.ForeignKey(PromoCode, on_delete=models.PROTECT, related_name="redemptions")
    reference = models.CharField(max_length=64)
    released_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "promo", "reference"], name="promoredemption_once_per_reference"
            )
        ]

    def __str__(self) -> str:
        return f"{self.promo} · {self.reference}"
