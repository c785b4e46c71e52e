"""Departures, holds and allotments over the API. Views only translate HTTP to the capacity services."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.errors import DomainError
from inventory import services
from inventory.api_catalogue import check_on_sale, selling_context
from inventory.models import Allotment, Departure, Hold
from inventory.serializers import (
    AllotmentResizeSerializer,
    AllotmentSerializer,
    DepartureChangeSerializer,
    DepartureCreateSerializer,
    DepartureSerializer,
    HoldCreateSerializer,
    HoldExtendSerializer,
    HoldSerializer,
)
from tenants.permissions import (
    HasApiAccess,
    RolePermissions,
    StaffRolesOrPartnerRead,
    partner_of,
    scope_to_partner,
)

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    location=OpenApiParameter.HEADER,
    required=True,
    description="Unique per intended hold (e.g. a UUID); a retry with the same key returns the same hold.",
)


@extend_schema_view(
    list=extend_schema(
        tags=["inventory"],
        parameters=[
            OpenApiParameter("tour", str),
            OpenApiParameter("option", str),
            OpenApiParameter("from", str, description="Local date, YYYY-MM-DD"),
            OpenApiParameter("to", str),
            OpenApiParameter("status", str),
        ],
    ),
    retrieve=extend_schema(tags=["inventory"]),
    create=extend_schema(
        tags=["inventory"], request=DepartureCreateSerializer, summary="A one-off departure"
    ),
    partial_update=extend_schema(
        tags=["inventory"],
        request=DepartureChangeSerializer,
        summary="Change capacity, close, reopen or cancel",
    ),
)
class DepartureViewSet(viewsets.ModelViewSet):
    serializer_class = DepartureSerializer
    permission_classes = [RolePermissions]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        queryset = Departure.objects.order_by("starts_at")
        params = self.request.query_params
        filters = {
            "tour_id": "tour",
            "option_id": "option",
            "local_date__gte": "from",
            "local_date__lte": "to",
        }
        for lookup, name in filters.items():
            if params.get(name):
                queryset = queryset.filter(**{lookup: params[name]})
        if params.get("status"):
            queryset = queryset.filter(status=params["status"])
        return queryset

    def list(self, request, *args, **kwargs):
        try:
            return super().list(request, *args, **kwargs)
        except (ValueError, DjangoValidationError) as error:  # a malformed uuid or date in the filters
            raise DomainError(
                "A filter value is malformed (ids are UUIDs, dates YYYY-MM-DD).", code="invalid"
            ) from error

    def create(self, request, *args, **kwargs):
        payload = DepartureCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        departure = services.create_departure(**payload.validated_data)
        return Response(DepartureSerializer(departure).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        departure = self.get_object()
        payload = DepartureChangeSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        if not data:
            raise DomainError(
                "Send capacity and/or status.", code="invalid", fields={"capacity": ["Nothing to change."]}
            )
        if "capacity" in data:
            departure = services.change_capacity(departure, data["capacity"])
        change_status = {
            Departure.Status.OPEN: services.reopen_departure,
            Departure.Status.CLOSED: services.close_departure,
            Departure.Status.CANCELLED: services.cancel_departure,
        }
        if data.get("status") and data["status"] != departure.status:
            departure = change_status[data["status"]](departure)
        departure.refresh_from_db()
        return Response(DepartureSerializer(departure).data)


class HoldPermissions(permissions.BasePermission):
    """Staff by role (sales and above may hold seats); an agency's booker for their agency."""

    def has_permission(self, request, view) -> bool:
        if partner_of(request) is not None:
            return True
        return RolePermissions().has_permission(request, view)


@extend_schema_view(
    retrieve=extend_schema(tags=["inventory"]),
    list=extend_schema(tags=["inventory"], summary="Holds (a booker sees its agency's)"),
    create=extend_schema(
        tags=["inventory"],
        request=HoldCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        summary="Hold seats for a while (15 min retail, longer for trade)",
        examples=[
            OpenApiExample(
                "Two adults and an infant",
                request_only=True,
                value={"departure": "0193…", "units": {"adult": 2, "infant": 1}},
            ),
            OpenApiExample(
                "Not enough seats",
                response_only=True,
                status_codes=["409"],
                value={
                    "error": {"code": "not_enough_seats", "message": "Only 1 seat left on …", "fields": {}}
                },
            ),
        ],
    ),
)
class HoldViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = HoldSerializer
    permission_classes = [HasApiAccess, HoldPermissions]

    def get_queryset(self):
        return scope_to_partner(Hold.objects.order_by("-created_at"), self.request)

    def create(self, request, *args, **kwargs):
        key = (request.headers.get("Idempotency-Key") or "").strip()
        if not key or len(key) > 100:
            raise DomainError(
                "Send an Idempotency-Key header (1–100 characters), unique per hold you intend to place.",
                code="idempotency_key_required",
            )
        payload = HoldCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        channel, agency = selling_context(request, data.get("channel"), data.get("agency"))
        check_on_sale(request, data["departure"])
        hold = services.place_hold(data["departure"], data["units"], channel, key, agency=agency)
        return Response(HoldSerializer(hold).data, status=status.HTTP_201_CREATED)

    @extend_schema(tags=["inventory"], request=HoldExtendSerializer, responses=HoldSerializer)
    @action(detail=True, methods=["post"])
    def extend(self, request, pk=None):
        payload = HoldExtendSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        hold = services.extend_hold(self.get_object(), payload.validated_data["seconds"])
        return Response(HoldSerializer(hold).data)

    @extend_schema(tags=["inventory"], request=None, responses=HoldSerializer)
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        hold = services.release_hold(self.get_object())
        return Response(HoldSerializer(hold).data)


@extend_schema_view(
    list=extend_schema(tags=["inventory"], summary="Allotments (a booker sees its agency's)"),
    retrieve=extend_schema(tags=["inventory"]),
    create=extend_schema(tags=["inventory"], summary="Reserve seats of a departure for an agency"),
)
class AllotmentViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = AllotmentSerializer
    permission_classes = [StaffRolesOrPartnerRead]

    def get_queryset(self):
        queryset = Allotment.objects.select_related("agency", "departure").order_by("release_at")
        return scope_to_partner(queryset, self.request)

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.create_allotment(
            data["agency"], data["departure"], data["seats"], data["release_at"]
        )

    @extend_schema(tags=["inventory"], request=AllotmentResizeSerializer, responses=AllotmentSerializer)
    @action(detail=True, methods=["post"])
    def resize(self, request, pk=None):
        payload = AllotmentResizeSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        allotment = services.resize_allotment(self.get_object(), payload.validated_data["seats"])
        return Response(AllotmentSerializer(allotment).data)

    @extend_schema(tags=["inventory"], request=None, responses=AllotmentSerializer)
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        allotment = services.release_allotment(self.get_object())
        return Response(AllotmentSerializer(allotment).data)
