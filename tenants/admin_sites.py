"""Two admin sites: the back office on each tenant host, the platform admin on the platform host."""

from __future__ import annotations

from django.contrib import admin, auth
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST


class _SignInThroughAccounts:
    """Both sites sign in through the accounts pages (password, then the second factor) and sign out to them."""

    def login(self, request, extra_context=None):
        return redirect_to_login(request.GET.get("next") or reverse("admin:index"), reverse("accounts:login"))

    @method_decorator(require_POST)
    def logout(self, request, extra_context=None):
        auth.logout(request)
        return redirect("accounts:login")


def _verified_enough(request) -> bool:
    """The session passed a second factor if the user needs one (django-otp's middleware sets ``is_verified``)."""
    user = request.user
    verified = getattr(user, "is_verified", None)
    return not user.needs_second_factor() or bool(verified and verified())


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
