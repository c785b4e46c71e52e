from django.urls import path

from portals.retail import views

app_name = "retail"

urlpatterns = [
    path("", views.home, name="home"),
]
