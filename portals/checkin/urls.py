"""The guides' check-in pages (a voucher's QR code leads here). Names without a namespace: vouchers link to
``check_in``."""

from django.urls import path

from portals.checkin import views

urlpatterns = [
    path("check-in/", views.enter_code, name="check_in_code"),
    path("check-in/<str:token>/", views.check_in_page, name="check_in"),
]
