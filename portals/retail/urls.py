from django.urls import include, path

from portals.retail import views, views_checkout

app_name = "retail"

urlpatterns = [
    path("", views.home, name="home"),
    path("booking/", views.find_booking_view, name="find_booking"),
    path("booking/<str:token>/", views.manage_booking, name="manage_booking"),
    path(
        "booking/<str:token>/documents/<uuid:document_id>/",
        views.download_document,
        name="booking_document",
    ),
    path("booking/<str:token>/cancel/", views.cancel_booking_view, name="cancel_booking"),
    path("booking/<str:token>/travellers/", views.travellers_view, name="booking_travellers"),
    # Paying: the checkout page (amount due now, schedule, card or PayPal), PayPal's way back, the confirmation
    # page that follows the booking's status live, and the status it polls.
    path("booking/<str:token>/pay/", views_checkout.checkout, name="checkout"),
    path("booking/<str:token>/pay/paypal/", views_checkout.start_paypal, name="checkout_paypal"),
    path(
        "booking/<str:token>/pay/paypal/return/", views_checkout.paypal_return, name="checkout_paypal_return"
    ),
    path("booking/<str:token>/pay/<uuid:payment_id>/", views_checkout.payment_done, name="checkout_done"),
    path("booking/<str:token>/status/", views_checkout.booking_status, name="booking_status"),
    path("", include("portals.retail.urls_tours")),
]
