"""Tour pages and the retail booking flow: the list (search), one tour, its booking form."""

from django.urls import path

from portals.retail import views_tours

urlpatterns = [
    path("tours/", views_tours.tour_list, name="tour_list"),
    path("tours/<slug:slug>/", views_tours.tour_detail, name="tour_detail"),
    path("tours/<slug:slug>/book/", views_tours.book, name="book"),
]
