"""Two admin sites: the back office on each tenant host, the platform admin on the platform host."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.urls import reverse


class _SignInThroughAccounts:
    """Both sites sign in through accounts/ (password, then the second factor)."""

    def login(self, request, extra_context=None):
        return redirect_to_login(request.GET.get("next") or reverse("admin:index"), reverse("accounts:login"))

    def logout(self, request, extra_context=None):
        from accounts.views import logout_view

        return logout_view(request)


def _verified_enough(request) -> bool:
    from accounts import mfa

    user = request.user
    return not mfa.needs_verification(user) or mfa.is_verified(user)


class TenantAdminSite(_SignInThroughAccounts, admin.AdminSite):
    site_header = "Back office"
    site_title = "Back office"
    index_title = "Back office"

    def has_permission(self, request) -> bool:
        tenant = getattr(request, "tenant", None)
        user = request.user
        return bool(
            tenant is not None
            and user.is_active
            and user.is_authenticated
            and user.role_in(tenant.pk) is not None
            and _verified_enough(request)
        )

    def each_context(self, request):
        context = super().each_context(request)
        tenant = getattr(request, "tenant", None)
        if tenant is not None:
            context["site_header"] = f"{tenant.name} · back office"
            context["site_title"] = tenant.name
        return context


class PlatformAdminSite(_SignInThroughAccounts, admin.AdminSite):
    site_header = "tourops platform"
    site_title = "tourops platform"
    index_title = "Tenants and platform users"

    def has_permission(self, request) -> bool:
        user = request.user
        return bool(
            getattr(request, "is_platform", False)
            and user.is_active
            and user.is_authenticated
            and user.is_superuser
            and _verified_enough(request)
        )


tenant_admin_site = TenantAdminSite(name="admin")
platform_admin_site = PlatformAdminSite(name="admin")
