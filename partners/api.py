"""Partner agencies, contracts and bookers over the API: staff manage them by role; a booker reads its own agency."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.errors import DomainError
from partners import services
from partners.models import Agency, Contract, PartnerUser
from partners.serializers import AgencySerializer, ContractSerializer, PartnerUserSerializer
from tenants.permissions import RolePermissions, StaffRolesOrPartnerRead, scope_to_partner

_WRITE = ["get", "post", "patch", "head", "options"]


@extend_schema_view(
    list=extend_schema(tags=["partners"], summary="Agencies (a booker sees only its own)"),
    retrieve=extend_schema(tags=["partners"]),
    create=extend_schema(tags=["partners"]),
    partial_update=extend_schema(tags=["partners"]),
)
class AgencyViewSet(viewsets.ModelViewSet):
    serializer_class = AgencySerializer
    permission_classes = [StaffRolesOrPartnerRead]
    http_method_names = _WRITE

    def get_queryset(self):
        return scope_to_partner(Agency.objects.order_by("legal_name"), self.request, agency_field="pk")

    def perform_create(self, serializer):
        serializer.instance = services.create_agency(
            actor=self.request.user, request=self.request, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.update_agency(
            serializer.instance, actor=self.request.user, request=self.request, **serializer.validated_data
        )


@extend_schema_view(
    list=extend_schema(tags=["partners"], summary="Contracts (staff)"),
    retrieve=extend_schema(tags=["partners"]),
    create=extend_schema(tags=["partners"]),
    partial_update=extend_schema(tags=["partners"]),
)
class ContractViewSet(viewsets.ModelViewSet):
    serializer_class = ContractSerializer
    permission_classes = [RolePermissions]
    http_method_names = _WRITE

    def get_queryset(self):
        queryset = Contract.objects.select_related("agency").order_by("-valid_from")
        agency = self.request.query_params.get("agency")
        return queryset.filter(agency_id=agency) if agency else queryset

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        agency = data.pop("agency")
        serializer.instance = services.save_contract(
            agency, actor=self.request.user, request=self.request, **data
        )

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        agency = data.pop("agency", serializer.instance.agency)
        if agency.pk != serializer.instance.agency_id:
            message = "A contract stays with its agency; end it and create one for the other agency."
            raise DomainError(message, code="invalid", fields={"agency": [message]})
        serializer.instance = services.save_contract(
            agency, serializer.instance, actor=self.request.user, request=self.request, **data
        )


@extend_schema_view(
    list=extend_schema(tags=["partners"], summary="Agency bookers (staff)"),
    retrieve=extend_schema(tags=["partners"]),
    create=extend_schema(tags=["partners"], summary="Give a person access as an agency's booker"),
)
class PartnerUserViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = PartnerUserSerializer
    permission_classes = [RolePermissions]

    def get_queryset(self):
        return PartnerUser.objects.select_related("user", "agency").order_by("user__email")

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.add_partner_user(
            data["agency"],
            email=data["user"]["email"],
            full_name=data["user"].get("full_name", ""),
            is_agency_admin=data.get("is_agency_admin", False),
            actor=self.request.user,
            request=self.request,
        )

    @extend_schema(tags=["partners"], request=None, summary="Deactivate a booker")
    @action(detail=True, methods=["post"])
    def deactivate(self, request, pk=None):
        partner_user = services.set_partner_user_active(
            self.get_object(), False, actor=request.user, request=request
        )
        return Response(self.get_serializer(partner_user).data, status=status.HTTP_200_OK)
