"""The back office's own pages, hooked onto the admin pages of their models. Each app's ``admin.py`` keeps its
models' lists and forms; the subclasses here add what is more than a model form — a booking's actions and panels,
documents and the departure manifest, the capacity calendar, an agency's statement, the exchange-rate import — and
take their models' places on the tenant's admin site."""

from __future__ import annotations

from functools import partial

from django.contrib.admin.utils import unquote
from django.urls import path, reverse

from bookings.admin import BookingAdmin
from bookings.models import Booking
from inventory.admin import DepartureAdmin
from inventory.models import Departure
from partners.admin import AgencyAdmin
from partners.models import Agency
from payments.admin import ExchangeRateAdmin
from payments.models import ExchangeRate
from portals.backoffice import bookings, inventory, partners, payments
from tenants.admin_sites import tenant_admin_site


class BookingBackOffice(BookingAdmin):
    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<uuid:object_id>/action/<slug:action>/",
                view(partial(bookings.booking_action, model_admin=self)),
                name="bookings_booking_action",
            ),
            path(
                "<uuid:object_id>/documents/<uuid:document_id>/",
                view(partial(bookings.document_download, model_admin=self)),
                name="bookings_booking_document",
            ),
            path(
                "manifest/<uuid:departure_id>/",
                view(partial(bookings.departure_manifest_view, model_admin=self)),
                name="bookings_departure_manifest",
            ),
            path(
                "manifest/<uuid:departure_id>/csv/",
                view(partial(bookings.departure_manifest_view, fmt="csv", model_admin=self)),
                name="bookings_departure_manifest_csv",
            ),
            path(
                "manifest/<uuid:departure_id>/pdf/",
                view(partial(bookings.departure_manifest_view, fmt="pdf", model_admin=self)),
                name="bookings_departure_manifest_pdf",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        booking = self.get_object(request, unquote(object_id))
        if booking is not None and self.has_view_permission(request, booking):
            extra_context = {**(extra_context or {}), **bookings.booking_page_context(request, booking)}
        return super().change_view(request, object_id, form_url, extra_context)


class DepartureBackOffice(DepartureAdmin):
    def get_urls(self):
        calendar = path(
            "calendar/<uuid:tour_id>/",
            self.admin_site.admin_view(partial(inventory.capacity_calendar, model_admin=self)),
            name="inventory_departure_calendar",
        )
        return [calendar, *super().get_urls()]


class AgencyBackOffice(AgencyAdmin):
    def get_urls(self):
        return [
            path(
                "<path:object_id>/statement/",
                self.admin_site.admin_view(partial(partners.agency_statement, model_admin=self)),
                name="partners_agency_statement",
            ),
            path(
                "<path:object_id>/statement.csv",
                self.admin_site.admin_view(partial(partners.agency_statement_csv, model_admin=self)),
                name="partners_agency_statement_csv",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "statement_url": reverse("admin:partners_agency_statement", args=[object_id])
            if request.user.has_perm(partners.STATEMENT_PERMISSION)
            else None,
        }
        return super().change_view(request, object_id, form_url, extra_context)


class ExchangeRateBackOffice(ExchangeRateAdmin):
    def get_urls(self):
        return [
            path(
                "import/",
                self.admin_site.admin_view(partial(payments.exchange_rate_import, model_admin=self)),
                name="payments_exchangerate_import",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "import_url": reverse("admin:payments_exchangerate_import")
            if self.has_add_permission(request)
            else "",
        }
        return super().changelist_view(request, extra_context)


for model, back_office in (
    (Booking, BookingBackOffice),
    (Departure, DepartureBackOffice),
    (Agency, AgencyBackOffice),
    (ExchangeRate, ExchangeRateBackOffice),
):
    tenant_admin_site.unregister(model)
    tenant_admin_site.register(model, back_office)
