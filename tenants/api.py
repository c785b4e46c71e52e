from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets

from tenants.models import AuditEvent, Membership
from tenants.permissions import RolePermissions
from tenants.serializers import AuditEventSerializer, MembershipSerializer


@extend_schema_view(list=extend_schema(tags=["team"]), retrieve=extend_schema(tags=["team"]))
class MembershipViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = MembershipSerializer
    permission_classes = [RolePermissions]

    def get_queryset(self):
        return Membership.objects.select_related("user").order_by("-created_at")


@extend_schema_view(list=extend_schema(tags=["audit"]), retrieve=extend_schema(tags=["audit"]))
class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = AuditEventSerializer
    permission_classes = [RolePermissions]

    def get_queryset(self):
        return AuditEvent.objects.all()
