"""Bookings in the back office. The model pages are read-only: every change to a booking goes through a service,
from the action pages the back office adds to the booking's page (``portals.backoffice``), never through a model
form."""

import datetime as dt
import re
from zoneinfo import ZoneInfo

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import OuterRef, Subquery

from bookings.models import (
    Booking,
    BookingItem,
    Consent,
    Document,
    Invoice,
    InvoiceSeries,
    Notification,
    StatusChange,
    Traveller,
)
from bookings.selectors import DEPARTURE_PERIODS, filter_bookings
from core.money import format_money
from core.pii.fields import blind_lookup
from tenants.admin import ReadOnlyAdmin
from tenants.admin_sites import tenant_admin_site

EMAIL_LIKE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ItemInline(_ReadOnlyInline):
    model = BookingItem
    fields = ["departure", "option", "units", "seats", "total"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("departure__option", "option")


class TravellerInline(_ReadOnlyInline):
    model = Traveller
    fields = ["unit_code", "first_name", "last_name", "nationality", "check_in"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("item__departure__tour")

    @admin.display(description="Check-in")
    def check_in(self, obj) -> str:
        if obj.checked_in_at is None:
            return "Not checked in"
        zone = obj.item.departure.tour.time_zone if obj.item else "UTC"
        return f"Checked in {obj.checked_in_at.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} ({zone})"


class StatusChangeInline(_ReadOnlyInline):
    model = StatusChange
    fields = ["created_at", "from_status", "to_status", "reason", "actor_label"]
    readonly_fields = fields


class ConsentInline(_ReadOnlyInline):
    model = Consent
    fields = ["terms_version", "marketing_opt_in", "accepted_at"]
    readonly_fields = fields


class DepartureDateFilter(admin.SimpleListFilter):
    """Bookings with a departure in a period: the next 7 or 30 days, already departed, or a range of local dates
    given as ``?departs_from=YYYY-MM-DD&departs_to=YYYY-MM-DD`` (both inclusive, in the tour's time zone)."""

    title = "departure date"
    parameter_name = "departs"
    range_parameters = ("departs_from", "departs_to")

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        for name in self.range_parameters:
            if name in params:
                self.used_parameters[name] = params.pop(name)[-1]

    def expected_parameters(self):
        return [self.parameter_name, *self.range_parameters]

    def lookups(self, request, model_admin):
        return list(DEPARTURE_PERIODS.items())

    def _date(self, name: str) -> dt.date | None:
        value = self.used_parameters.get(name)
        if not value:
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise IncorrectLookupParameters(f"{name} is a date, YYYY-MM-DD.") from None

    def queryset(self, request, queryset):
        period = self.value()
        if period and period not in DEPARTURE_PERIODS:
            raise IncorrectLookupParameters("Unknown departure period.")
        return filter_bookings(
            queryset,
            departs_in=period or None,
            departs_from=self._date("departs_from"),
            departs_to=self._date("departs_to"),
        )


@admin.register(Booking, site=tenant_admin_site)
class BookingAdmin(ReadOnlyAdmin):
    """Read-only: every change goes through a service, from the action pages linked on the booking's page."""

    list_display = [
        "reference",
        "status",
        "channel",
        "agency",
        "lead_name",
        "first_departure",
        "total_amount",
        "balance_amount",
        "created_at",
    ]
    list_filter = [
        "status",
        "channel",
        "agency",
        DepartureDateFilter,
        ("created_at", admin.DateFieldListFilter),
    ]
    list_select_related = ["agency"]
    search_fields = ["reference", "agent_reference"]
    search_help_text = "A booking reference, an agent reference, or the lead customer's exact email address."
    date_hierarchy = "created_at"
    inlines = [ItemInline, TravellerInline, StatusChangeInline, ConsentInline]
    exclude = ["lead_email_index"]

    def get_list_filter(self, request):
        # Django's related filter lists every agency by name; only those who may see partners get it.
        if request.user.has_perm("partners.view_agency"):
            return self.list_filter
        return [name for name in self.list_filter if name != "agency"]

    def get_queryset(self, request):
        # A correlated subquery rather than Min() over a join: the list's COUNT queries can then leave it out.
        first_date = (
            BookingItem.objects.filter(booking=OuterRef("pk"))
            .order_by("departure__starts_at")
            .values("departure__local_date")[:1]
        )
        return super().get_queryset(request).annotate(first_departure_date=Subquery(first_date))

    @admin.display(description="Lead customer")
    def lead_name(self, obj) -> str:
        return obj.lead_name

    @admin.display(description="First departure", ordering="first_departure_date")
    def first_departure(self, obj):
        return obj.first_departure_date

    @admin.display(description="Total", ordering="total")
    def total_amount(self, obj) -> str:
        return format_money(obj.total, obj.currency)

    @admin.display(description="Balance")
    def balance_amount(self, obj) -> str:
        return format_money(obj.balance, obj.currency)

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if EMAIL_LIKE.fullmatch(term):
            # The address is stored encrypted: only its blind index can be matched, and only exactly.
            results = results | queryset.filter(
                **blind_lookup(Booking, "lead_email_index", term, tenant_id=request.tenant.pk)
            )
        return results, may_have_duplicates


@admin.register(Traveller, site=tenant_admin_site)
class TravellerAdmin(ReadOnlyAdmin):
    list_display = ["booking", "unit_code", "first_name", "last_name", "checked_in_at"]
    list_select_related = ["booking"]


@admin.register(BookingItem, site=tenant_admin_site)
class BookingItemAdmin(ReadOnlyAdmin):
    list_display = ["booking", "departure", "seats", "total"]
    list_select_related = ["booking", "departure"]


@admin.register(StatusChange, site=tenant_admin_site)
class StatusChangeAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "booking", "from_status", "to_status", "actor_label"]


@admin.register(Consent, site=tenant_admin_site)
class ConsentAdmin(ReadOnlyAdmin):
    list_display = ["booking", "terms_version", "marketing_opt_in", "accepted_at"]


@admin.register(Invoice, site=tenant_admin_site)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ["display_number", "kind", "booking", "currency", "total", "issued_at"]
    list_filter = ["kind", "series"]
    search_fields = ["booking__reference"]
    list_select_related = ["booking"]


@admin.register(InvoiceSeries, site=tenant_admin_site)
class InvoiceSeriesAdmin(ReadOnlyAdmin):
    list_display = ["prefix", "next_number"]


@admin.register(Document, site=tenant_admin_site)
class DocumentAdmin(ReadOnlyAdmin):
    list_display = ["filename", "kind", "booking", "version", "size", "created_at"]
    list_filter = ["kind"]
    list_select_related = ["booking"]
    exclude = ["content"]


@admin.register(Notification, site=tenant_admin_site)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "booking", "subject", "status", "attempts", "sent_at"]
    list_filter = ["kind", "status"]
    list_select_related = ["booking"]
