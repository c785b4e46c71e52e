"""URLs of the platform host: the platform admin (tenants, domains, platform users) and sign-in."""

from django.urls import include, path
from django.views.generic import RedirectView

from tenants.admin_sites import platform_admin_site

handler400 = "core.views.bad_request"
handler403 = "core.views.permission_denied"
handler404 = "core.views.not_found"
handler500 = "core.views.server_error"

urlpatterns = [
    path("admin/", platform_admin_site.urls),
    path("accounts/", include("accounts.urls")),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
