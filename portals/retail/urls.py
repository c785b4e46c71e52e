from django.urls import path

from portals.retail import views

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
]
