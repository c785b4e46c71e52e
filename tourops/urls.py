"""URLs of a tenant host: retail site, back office, accounts, REST API."""

from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerSplitView

from core.openapi import CachedSchemaView
from payments import views as payments_views
from tenants.admin_sites import tenant_admin_site

handler400 = "core.views.bad_request"
handler403 = "core.views.permission_denied"
handler404 = "core.views.not_found"
handler500 = "core.views.server_error"

urlpatterns = [
    path("admin/", tenant_admin_site.urls),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", include("tourops.api_urls")),
    path("api/v1/schema/", CachedSchemaView.as_view(), name="api-schema"),
    path("api/v1/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("portals.checkin.urls")),
    path("payments/webhooks/<str:provider>/", payments_views.webhook, name="payments-webhook"),
    path("", include("portals.retail.urls")),
]
