"""Bookings over the API: staff by role; an agency's booker books for, and sees, its own agency only."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from bookings import services
from bookings.models import Booking
from bookings.serializers import BookingCreateSerializer, BookingSerializer, ReasonSerializer
from core.errors import DomainError
from tenants.permissions import HasApiAccess, RolePermissions, partner_of, scope_to_partner

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    location=OpenApiParameter.HEADER,
    required=False,
    description="A retry with the same key returns the same booking.",
)


class BookingPermissions(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return partner_of(request) is not None or RolePermissions().has_permission(request, view)


@extend_schema_view(
    list=extend_schema(tags=["bookings"], parameters=[OpenApiParameter("status", str)]),
    retrieve=extend_schema(tags=["bookings"]),
    create=extend_schema(
        tags=["bookings"],
        request=BookingCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        summary="A booking on hold from one or more holds",
    ),
)
class BookingViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = BookingSerializer
    permission_classes = [HasApiAccess, BookingPermissions]

    def get_queryset(self):
        queryset = Booking.objects.prefetch_related("items", "travellers", "status_history").order_by(
            "-created_at"
        )
        if self.request.query_params.get("status"):
            queryset = queryset.filter(status=self.request.query_params["status"])
        return scope_to_partner(queryset, self.request)

    def create(self, request, *args, **kwargs):
        payload = BookingCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        partner = partner_of(request)
        if partner is not None:
            channel, agency = Booking.Channel.TRADE, partner.agency
        else:
            agency = data.get("agency")
            channel = Booking.Channel.TRADE if agency else Booking.Channel.BACK_OFFICE
        key = (request.headers.get("Idempotency-Key") or "").strip()
        if len(key) > 100:
            raise DomainError("The Idempotency-Key header is at most 100 characters.", code="invalid")
        consent = data.get("consent")
        booking = services.create_booking(
            holds=data["holds"],
            lead=services.Lead(**data["lead"]),
            travellers=[services.TravellerDetails(**traveller) for traveller in data["travellers"]],
            channel=channel,
            language=data["language"],
            agency=agency,
            agent_reference=data["agent_reference"],
            on_account=data["on_account"],
            promo_code=data["promo_code"] or None,
            idempotency_key=key,
            consent={**consent, "ip_address": request.META.get("REMOTE_ADDR", "")} if consent else None,
            actor=request.user,
        )
        return Response(BookingSerializer(booking).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=["bookings"], request=None, responses=BookingSerializer, summary="Confirm (nothing due)"
    )
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        booking = services.confirm_booking(self.get_object(), actor=request.user)
        return Response(BookingSerializer(booking).data)

    @extend_schema(tags=["bookings"], request=ReasonSerializer, responses=BookingSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        payload = ReasonSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        booking = services.cancel_booking(
            self.get_object(), actor=request.user, reason=payload.validated_data["reason"]
        )
        return Response(BookingSerializer(booking).data)
