from rest_framework import permissions


class IsTenantMember(permissions.BasePermission):
    """Authenticated, on a tenant host, with an active membership there."""

    message = "You are not a member of this site."

    def has_permission(self, request, view) -> bool:
        tenant = getattr(request, "tenant", None)
        user = request.user
        return bool(
            tenant is not None and user and user.is_authenticated and user.role_in(tenant.pk) is not None
        )


class RolePermissions(permissions.DjangoModelPermissions):
    """Model permissions from the member's role, reads included (view permission for GET)."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request, view) -> bool:
        return IsTenantMember().has_permission(request, view) and super().has_permission(request, view)
