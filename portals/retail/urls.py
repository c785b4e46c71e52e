from django.urls import path

from portals.retail import views

app_name = "retail"

urlpatterns = [
    path("", views.home, name="home"),
    path("booking/<str:token>/", views.manage_booking, name="manage_booking"),
]
