from __future__ import annotations

from django.contrib.auth.backends import ModelBackend

from accounts.models import User


class EmailBackend(ModelBackend):
    """Email + password, and only where the user belongs: a member of the host's tenant, or a platform
    administrator on the platform host. Permissions come from ``User.has_perm`` (role-based), not from here."""

    def authenticate(self, request, email: str | None = None, password: str | None = None, **kwargs):
        email = (email or kwargs.get("username") or "").strip().lower()
        if not email or password is None:
            return None
        try:
            user = User.objects.get(email=email)
        except User.DoesNotExist:
            User().set_password(
                password
            )  # same work as a real check: no timing hint that the email is unknown
            return None
        if not user.check_password(password) or not self.user_can_authenticate(user):
            return None
        return user if may_sign_in_here(user, request) else None

    def get_user(self, user_id):
        try:
            user = User.objects.get(pk=user_id)
        except (User.DoesNotExist, ValueError):
            return None
        return user if self.user_can_authenticate(user) else None

    def has_perm(self, user_obj, perm, obj=None):
        return False

    def has_module_perms(self, user_obj, app_label):
        return False


# Where an agency's bookers (PartnerUser, no staff membership) may sign in: the API (the trade portal's pages will
# be added here). Everything else on a tenant host (the back office above all) is for staff members only.
PARTNER_AREAS = ("/api/",)


def may_sign_in_here(user: User, request) -> bool:
    tenant = getattr(request, "tenant", None)
    if tenant is not None:
        if user.role_in(tenant.pk) is not None:
            return True
        in_partner_area = str(getattr(request, "path", "")).startswith(PARTNER_AREAS)
        return in_partner_area and user.partner_account_in(tenant.pk) is not None
    return bool(getattr(request, "is_platform", False) and user.is_superuser)
