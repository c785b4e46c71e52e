"""Bookings in the back office. Read-only until the booking services (state machine) exist: every change to a
booking goes through them, never through a form."""

from django.contrib import admin

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
from tenants.admin import ReadOnlyAdmin
from tenants.admin_sites import tenant_admin_site


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


class TravellerInline(_ReadOnlyInline):
    model = Traveller
    fields = ["unit_code", "first_name", "last_name", "nationality", "checked_in_at"]
    readonly_fields = fields


class StatusChangeInline(_ReadOnlyInline):
    model = StatusChange
    fields = ["created_at", "from_status", "to_status", "reason", "actor_label"]
    readonly_fields = fields


class ConsentInline(_ReadOnlyInline):
    model = Consent
    fields = ["terms_version", "marketing_opt_in", "accepted_at"]
    readonly_fields = fields


@admin.register(Booking, site=tenant_admin_site)
class BookingAdmin(ReadOnlyAdmin):
    list_display = [
        "reference",
        "status",
        "channel",
        "agency",
        "agent_reference",
        "currency",
        "total",
        "created_at",
    ]
    list_filter = ["status", "channel", "agency"]
    search_fields = ["reference", "agent_reference"]
    date_hierarchy = "created_at"
    inlines = [ItemInline, TravellerInline, StatusChangeInline, ConsentInline]
    exclude = ["lead_email_index"]


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
