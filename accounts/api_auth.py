"""API authentication bound to the host's tenant. Pluggable: the OAuth2 client-credentials class joins the
``API_AUTHENTICATION_CLASSES`` list later."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework_simplejwt.authentication import JWTAuthentication

from accounts import mfa

TENANT_CLAIM = "tenant"


def tenant_of(request):
    return getattr(request, "tenant", None)


class TenantJWTAuthentication(JWTAuthentication):
    """A bearer token is valid only on the tenant it was issued for, and only while the user is a member."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, token = result
        tenant = tenant_of(request)
        if tenant is None or token.get(TENANT_CLAIM) != str(tenant.pk):
            raise exceptions.AuthenticationFailed(
                "This token was not issued for this site.", code="token_wrong_tenant"
            )
        if not user.has_api_access_in(tenant.pk):
            raise exceptions.AuthenticationFailed(
                "This account has no access to this site.", code="no_membership"
            )
        return user, token


class TenantSessionAuthentication(SessionAuthentication):
    """The back office's browser session, for same-site API calls (CSRF enforced); needs a verified second
    factor where the user has one or the role demands it."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, auth = result
        tenant = tenant_of(request)
        if tenant is None or user.role_in(tenant.pk) is None:
            return None
        if mfa.needs_verification(user) and not mfa.is_verified(user):
            return None
        return user, auth
