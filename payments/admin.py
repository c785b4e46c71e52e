"""Payments in the back office: read-only. Money is recorded only through ``payments.services`` (the booking page's
"record offline payment" action), so every change moves ``Booking.paid``, is audited and announced."""

from django.contrib import admin
from django.utils import translation

from core.money import Money
from payments.models import Payment
from tenants.admin import ReadOnlyAdmin
from tenants.admin_sites import tenant_admin_site


@admin.register(Payment, site=tenant_admin_site)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "booking",
        "amount_received",
        "provider",
        "method",
        "status",
        "provider_reference",
        "recorded_by",
    ]
    list_filter = ["status", "provider", "method"]
    search_fields = ["booking__reference", "provider_reference"]
    list_select_related = ["booking", "recorded_by"]
    date_hierarchy = "created_at"

    @admin.display(description="Amount", ordering="amount")
    def amount_received(self, payment: Payment) -> str:
        return Money(payment.amount, payment.currency).format(translation.get_language() or "en")
