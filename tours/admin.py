"""Back office for the catalogue and pricing: tours with everything that hangs off them, price lists, promo codes.

Every save and delete, inline rows included, lands in the tenant's audit log with before/after values.
"""

from __future__ import annotations

from zoneinfo import available_timezones

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from tenants.admin import AuditedInlinesAdmin, AuditedModelAdmin, ReadOnlyAdmin
from tenants.admin_sites import tenant_admin_site
from tours.models import (
    BookingQuestion,
    CancellationTier,
    Category,
    Destination,
    ItineraryDay,
    Option,
    PriceList,
    PromoCode,
    PromoRedemption,
    Rate,
    Season,
    Surcharge,
    TaxRate,
    Tour,
    TourCategory,
    TourImage,
    TourTranslation,
    UnitType,
)
from tours.sanitize import sanitize_description

# --- catalogue ------------------------------------------------------------------------------------------------


@admin.register(Destination, site=tenant_admin_site)
class DestinationAdmin(AuditedModelAdmin):
    list_display = ["name", "slug", "country"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Category, site=tenant_admin_site)
class CategoryAdmin(AuditedModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


class TourForm(forms.ModelForm):
    class Meta:
        model = Tour
        fields = [
            "title",
            "slug",
            "status",
            "destination",
            "summary",
            "description",
            "inclusions",
            "exclusions",
            "duration_minutes",
            "difficulty",
            "languages",
            "time_zone",
            "meeting_point",
            "meeting_latitude",
            "meeting_longitude",
        ]

    def clean_description(self) -> str:
        return sanitize_description(self.cleaned_data.get("description", ""))

    def clean_time_zone(self) -> str:
        zone = self.cleaned_data["time_zone"].strip()
        if zone not in available_timezones():
            raise forms.ValidationError("Not an IANA time zone name (e.g. Africa/Casablanca, Europe/Oslo).")
        return zone


class TourTranslationForm(forms.ModelForm):
    class Meta:
        model = TourTranslation
        fields = ["language", "title", "summary", "description", "inclusions", "exclusions", "meeting_point"]

    def clean_description(self) -> str:
        return sanitize_description(self.cleaned_data.get("description", ""))


class OptionInline(admin.StackedInline):
    model = Option
    extra = 0
    fields = [
        ("code", "name"),
        "description",
        ("is_private", "min_participants", "max_participants"),
        "is_active",
    ]


class UnitTypeInline(admin.TabularInline):
    model = UnitType
    extra = 0
    fields = [
        "code",
        "kind",
        "name",
        "min_age",
        "max_age",
        "min_per_booking",
        "max_per_booking",
        "counts_toward_capacity",
        "seats_per_unit",
        "position",
    ]


class ItineraryDayInline(admin.StackedInline):
    model = ItineraryDay
    extra = 0


class TourImageInline(admin.TabularInline):
    model = TourImage
    extra = 0
    fields = ["image", "alt_text", "position"]


class TourTranslationInline(admin.StackedInline):
    model = TourTranslation
    form = TourTranslationForm
    extra = 0


class CancellationTierInline(admin.TabularInline):
    model = CancellationTier
    extra = 0


class BookingQuestionInline(admin.TabularInline):
    model = BookingQuestion
    extra = 0
    fields = ["code", "text", "help_text", "scope", "kind", "choices", "required", "position"]


class TourCategoryInline(admin.TabularInline):
    model = TourCategory
    extra = 0
    verbose_name = "category"
    verbose_name_plural = "categories"


@admin.register(Tour, site=tenant_admin_site)
class TourAdmin(AuditedInlinesAdmin):
    form = TourForm
    list_display = ["title", "slug", "status", "destination", "duration_minutes", "updated_at", "calendar"]
    list_filter = ["status", "destination", "categories", "difficulty"]
    search_fields = ["title", "slug", "summary"]
    list_select_related = ["destination"]
    prepopulated_fields = {"slug": ["title"]}
    fieldsets = [
        (None, {"fields": ["title", "slug", "status", "destination", "summary", "description"]}),
        ("What is included", {"fields": ["inclusions", "exclusions"]}),
        (
            "Practical",
            {
                "fields": [
                    "duration_minutes",
                    "difficulty",
                    "languages",
                    "time_zone",
                    "meeting_point",
                    ("meeting_latitude", "meeting_longitude"),
                ]
            },
        ),
    ]

    @admin.display(description="Capacity")
    def calendar(self, obj) -> str:
        url = reverse("admin:inventory_departure_calendar", args=[obj.pk])
        return format_html(
            '<a href="{}">Calendar<span class="visually-hidden"> of {}</span></a>', url, obj.title
        )

    inlines = [
        OptionInline,
        UnitTypeInline,
        TourCategoryInline,
        ItineraryDayInline,
        TourImageInline,
        TourTranslationInline,
        CancellationTierInline,
        BookingQuestionInline,
    ]


# --- pricing --------------------------------------------------------------------------------------------------


@admin.register(TaxRate, site=tenant_admin_site)
class TaxRateAdmin(AuditedModelAdmin):
    list_display = ["name", "percent", "inclusive"]
    search_fields = ["name"]


class SeasonInline(admin.TabularInline):
    model = Season
    extra = 0


class RateForm(forms.ModelForm):
    class Meta:
        model = Rate
        fields = ["option", "unit_type", "season", "amount"]

    def clean(self):
        data = super().clean()
        option, unit_type, season = data.get("option"), data.get("unit_type"), data.get("season")
        if option and unit_type and option.tour_id != unit_type.tour_id:
            self.add_error("unit_type", "This unit type belongs to another tour than the option.")
        if season and self.instance.price_list_id and season.price_list_id != self.instance.price_list_id:
            self.add_error("season", "This season belongs to another price list.")
        return data


class RateInline(admin.TabularInline):
    model = Rate
    form = RateForm
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("option__tour", "unit_type", "season")


class SurchargeInline(admin.TabularInline):
    model = Surcharge
    extra = 0


@admin.register(PriceList, site=tenant_admin_site)
class PriceListAdmin(AuditedInlinesAdmin):
    list_display = [
        "name",
        "channel",
        "currency",
        "agency",
        "valid_from",
        "valid_to",
        "priority",
        "is_active",
    ]
    list_filter = ["channel", "currency", "is_active"]
    search_fields = ["name"]
    list_select_related = ["agency"]
    inlines = [SeasonInline, RateInline, SurchargeInline]


class PromoCodeForm(forms.ModelForm):
    class Meta:
        model = PromoCode
        fields = [
            "code",
            "kind",
            "percent",
            "amount",
            "currency",
            "channel",
            "valid_from",
            "valid_to",
            "max_uses",
            "is_active",
        ]

    def clean(self):
        # The CHECK constraint says the same; these messages say it in the staff's terms, next to the field.
        data = super().clean()
        kind = data.get("kind")
        if kind == PromoCode.Kind.PERCENT:
            if data.get("percent") is None:
                self.add_error("percent", "A percent-off code needs a percentage.")
            if data.get("amount") is not None:
                self.add_error("amount", "Leave empty for a percent-off code.")
        elif kind == PromoCode.Kind.FIXED:
            if data.get("amount") is None:
                self.add_error("amount", "A fixed-amount code needs an amount (minor units).")
            if not data.get("currency"):
                self.add_error("currency", "A fixed amount is in a currency.")
            if data.get("percent") is not None:
                self.add_error("percent", "Leave empty for a fixed-amount code.")
        valid_from, valid_to = data.get("valid_from"), data.get("valid_to")
        if valid_from and valid_to and valid_to < valid_from:
            self.add_error("valid_to", "Ends before it starts.")
        max_uses = data.get("max_uses")
        if max_uses is not None and max_uses < self.instance.times_used:
            self.add_error("max_uses", f"Already used {self.instance.times_used} times.")
        if data.get("code"):
            data["code"] = data["code"].strip().upper()
        return data


@admin.register(PromoCode, site=tenant_admin_site)
class PromoCodeAdmin(AuditedModelAdmin):
    form = PromoCodeForm
    list_display = [
        "code",
        "kind",
        "percent",
        "amount",
        "currency",
        "channel",
        "times_used",
        "max_uses",
        "is_active",
    ]
    list_filter = ["kind", "channel", "is_active"]
    search_fields = ["code"]
    readonly_fields = ["times_used"]


@admin.register(PromoRedemption, site=tenant_admin_site)
class PromoRedemptionAdmin(ReadOnlyAdmin):
    list_display = ["promo", "reference", "created_at", "released_at"]
    search_fields = ["promo__code", "reference"]
    list_select_related = ["promo"]
