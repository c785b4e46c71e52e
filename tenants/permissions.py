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


class HasApiAccess(permissions.BasePermission):
    """A staff member of this host's tenant, or one of its agencies' bookers."""

    message = "You have no access to this site."

    def has_permission(self, request, view) -> bool:
        tenant = getattr(request, "tenant", None)
        user = request.user
        return bool(
            tenant is not None and user and user.is_authenticated and user.has_api_access_in(tenant.pk)
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


def partner_of(request):
    """The signed-in agency booker (PartnerUser) on this host, or None (staff, anonymous, other tenants)."""
    user = request.user
    if not (user and user.is_authenticated and getattr(request, "tenant", None) is not None):
        return None
    return user.partner_account_in(request.tenant.pk)


class StaffRolesOrPartnerRead(RolePermissions):
    """Staff act by their role's model permissions; an agency's bookers may read, and the view narrows what they
    read to their own agency (``scope_to_partner``)."""

    def has_permission(self, request, view) -> bool:
        if IsTenantMember().has_permission(request, view):
            return permissions.DjangoModelPermissions.has_permission(self, request, view)
        return request.method in permissions.SAFE_METHODS and partner_of(request) is not None


def scope_to_partner(queryset, request, agency_field: str = "agency"):
    """A booker sees only their agency's rows (even if they were also made staff: the narrower access wins);
    staff the tenant's; anyone else nothing."""
    partner = partner_of(request)
    if partner is not None:
        return queryset.filter(**{agency_field: partner.agency_id})
    if IsTenantMember().has_permission(request, None):
        return queryset
    return queryset.none()
