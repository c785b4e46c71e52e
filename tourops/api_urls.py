from django.urls import path
from rest_framework.routers import SimpleRouter

from accounts import api as accounts_api
from bookings import api as bookings_api
from bookings import api_checkin
from inventory import api as inventory_api
from inventory import api_catalogue as catalogue_api
from inventory.views_public import availability_view
from partners import api as partners_api
from payments import api as payments_api
from tenants import api as tenants_api

router = SimpleRouter()
router.register("memberships", tenants_api.MembershipViewSet, basename="membership")
router.register("audit-events", tenants_api.AuditEventViewSet, basename="audit-event")
router.register("tours", catalogue_api.TourViewSet, basename="tour")
router.register("departures", inventory_api.DepartureViewSet, basename="departure")
router.register("holds", inventory_api.HoldViewSet, basename="hold")
router.register("allotments", inventory_api.AllotmentViewSet, basename="allotment")
router.register("bookings", bookings_api.BookingViewSet, basename="booking")
router.register("agencies", partners_api.AgencyViewSet, basename="agency")
router.register("contracts", partners_api.ContractViewSet, basename="contract")
router.register("partner-users", partners_api.PartnerUserViewSet, basename="partner-user")

urlpatterns = [
    path("auth/token/", accounts_api.TokenObtainView.as_view(), name="token-obtain"),
    path("auth/token/refresh/", accounts_api.TokenRefreshView.as_view(), name="token-refresh"),
    path("auth/token/revoke/", accounts_api.TokenRevokeView.as_view(), name="token-revoke"),
    path("me/", accounts_api.MeView.as_view(), name="me"),
    path("quotes/", catalogue_api.QuoteView.as_view(), name="quote"),
    path("tours/<slug:slug>/availability/", availability_view, name="tour-availability"),
    path("check-in/", api_checkin.CheckInView.as_view(), name="check-in"),
    # Before the router: its booking detail pattern would otherwise take the reference for a primary key.
    path(
        "bookings/<str:reference>/payments/",
        payments_api.BookingPaymentsView.as_view(),
        name="booking-payments",
    ),
    path(
        "bookings/<str:reference>/refunds/", payments_api.BookingRefundsView.as_view(), name="booking-refunds"
    ),
    *router.urls,
]
