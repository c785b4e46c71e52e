"""OpenAPI descriptions of our authentication classes (drf-spectacular)."""

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class TenantJWTScheme(SimpleJWTScheme):
    target_class = "accounts.api_auth.TenantJWTAuthentication"
    name = "tenantJWT"

    def get_security_definition(self, auto_schema):
        definition = super().get_security_definition(auto_schema)
        definition["description"] = (
            "Access token from /api/v1/auth/token/, valid only on the host that issued it."
        )
        return definition


class TenantSessionScheme(SessionScheme):
    target_class = "accounts.api_auth.TenantSessionAuthentication"
    name = "backOfficeSession"
