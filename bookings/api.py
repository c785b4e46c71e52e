"""Bookings over the API: staff by role; an agency's booker books for, and sees, its own agency only."""

from __future__ import annotations

import json
import uuid

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, renderers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from bookings import services
from bookings.models import Booking, Document
from bookings.selectors import filter_bookings
from bookings.serializers import (
    BookingCreateSerializer,
    BookingFilterSerializer,
    BookingSerializer,
    CancelSerializer,
    DocumentSerializer,
    ModifySerializer,
    MoveSerializer,
    TravellersSerializer,
)
from core.downloads import private_download
from core.errors import DomainError
from core.http import client_ip
from tenants.permissions import HasApiAccess, IsTenantMember, RolePermissions, partner_of, scope_to_partner

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    location=OpenApiParameter.HEADER,
    required=False,
    description="A retry with the same key returns the same booking.",
)
# Actions that change an existing booking: staff need the change permission (sales, manager, owner).
CHANGING_ACTIONS = frozenset({"confirm", "cancel", "modify", "move", "travellers"})
OVERRIDE_REFUND = "bookings.override_refund"


class BookingPermissions(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        if partner_of(request) is not None:
            return True  # the queryset narrows a booker to their agency's bookings
        if view.action in CHANGING_ACTIONS:
            return IsTenantMember().has_permission(request, view) and request.user.has_perm(
                "bookings.change_booking"
            )
        return RolePermissions().has_permission(request, view)


class PDFRenderer(renderers.BaseRenderer):
    """Lets a client ask for ``Accept: application/pdf``; the download answers with the bytes itself, and an error
    is still the JSON error body."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else json.dumps(data).encode()


def _filtered(queryset, request):
    """The list's query parameters (see BookingFilterSerializer); a malformed one is a 400 naming it."""
    params = BookingFilterSerializer(data=request.query_params)
    params.is_valid(raise_exception=True)
    data = params.validated_data
    if "agency" in data and partner_of(request) is not None:
        raise DomainError(
            "Bookers see their own agency's bookings only.",
            code="invalid",
            fields={"agency": ["Staff only."]},
        )
    return filter_bookings(
        queryset,
        status=data.get("status"),
        channel=data.get("channel"),
        agency_id=data.get("agency"),
        reference=data.get("reference"),
        agent_reference=data.get("agent_reference"),
        departs_from=data.get("departure_from"),
        departs_to=data.get("departure_to"),
        created_from=data.get("created_from"),
        created_to=data.get("created_to"),
        time_zone=request.tenant.time_zone,
    )


@extend_schema_view(
    list=extend_schema(tags=["bookings"], parameters=[BookingFilterSerializer]),
    retrieve=extend_schema(tags=["bookings"], responses=BookingSerializer),
    create=extend_schema(
        tags=["bookings"],
        request=BookingCreateSerializer,
        responses={201: BookingSerializer},
        parameters=[IDEMPOTENCY_KEY],
        summary="A booking on hold from one or more holds",
    ),
)
class BookingViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = BookingSerializer
    permission_classes = [HasApiAccess, BookingPermissions]

    def get_queryset(self):
        queryset = Booking.objects.order_by("-created_at")
        if self.action in ("list", "retrieve") or getattr(self, "_for_answer", False):
            # Actions only need the booking to hand to a service; what they answer is loaded afterwards.
            queryset = queryset.prefetch_related(
                "items__departure", "items__option", "travellers", "status_history"
            )
        if self.action == "list":
            queryset = _filtered(queryset, self.request)
        return scope_to_partner(queryset, self.request)

    def get_serializer_context(self):
        # What cancelling would cost is worked out for one booking at a time, not for every row of a list.
        return {**super().get_serializer_context(), "with_terms": self.action != "list"}

    def _detail(self, booking: Booking, code: int = status.HTTP_200_OK) -> Response:
        self._for_answer = True
        fresh = self.get_queryset().get(pk=booking.pk)
        return Response(BookingSerializer(fresh, context=self.get_serializer_context()).data, status=code)

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
            consent={**consent, "ip_address": client_ip(request)} if consent else None,
            actor=request.user,
        )
        return self._detail(booking, status.HTTP_201_CREATED)

    @extend_schema(
        tags=["bookings"], request=None, responses=BookingSerializer, summary="Confirm (nothing due)"
    )
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        return self._detail(services.confirm_booking(self.get_object(), actor=request.user, request=request))

    @extend_schema(
        tags=["bookings"],
        request=CancelSerializer,
        responses=BookingSerializer,
        summary="Cancel (seats back on sale; refundable amount per policy, or overridden with a reason)",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        payload = CancelSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        if "refundable" in data and not request.user.has_perm(OVERRIDE_REFUND):
            raise PermissionDenied("Overriding the refundable amount needs the refund override permission.")
        booking = services.cancel_booking(
            self.get_object(),
            actor=request.user,
            reason=data["reason"],
            refundable_override=data.get("refundable"),
            request=request,
        )
        return self._detail(booking)

    @extend_schema(
        tags=["bookings"],
        request=ModifySerializer,
        responses=BookingSerializer,
        summary="Change one item's units (travellers join or leave), re-priced",
    )
    @action(detail=True, methods=["post"])
    def modify(self, request, pk=None):
        payload = ModifySerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        booking = services.modify_booking(
            self.get_object(),
            data["item"],
            data["units"],
            remove_travellers=[str(traveller) for traveller in data["remove_travellers"]],
            actor=request.user,
            reason=data["reason"],
        )
        return self._detail(booking)

    @extend_schema(
        tags=["bookings"],
        request=MoveSerializer,
        responses=BookingSerializer,
        summary="Move one item to another date of the same tour, re-priced",
    )
    @action(detail=True, methods=["post"])
    def move(self, request, pk=None):
        payload = MoveSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        booking = services.move_departure(
            self.get_object(),
            data["item"],
            data["departure"],
            actor=request.user,
            reason=data["reason"],
            request=request,
        )
        return self._detail(booking)

    @extend_schema(
        tags=["bookings"],
        request=TravellersSerializer,
        responses=BookingSerializer,
        summary="Change travellers' details and name more travellers (bookers until the cut-off)",
    )
    @action(detail=True, methods=["patch"])
    def travellers(self, request, pk=None):
        payload = TravellersSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        booking = services.update_travellers(
            self.get_object(),
            data["changes"],
            add=[services.TravellerDetails(**traveller) for traveller in data["add"]],
            actor=request.user,
            # Staff may correct details at any time; the agency's bookers are held to the cut-off like travellers.
            enforce_cutoff=partner_of(request) is not None,
        )
        return self._detail(booking)

    @extend_schema(tags=["bookings"], responses=DocumentSerializer(many=True), summary="Invoices, vouchers …")
    @action(detail=True, methods=["get"], pagination_class=None)
    def documents(self, request, pk=None):
        documents = self.get_object().documents.order_by("kind", "version", "created_at")
        return Response(DocumentSerializer(documents, many=True, context=self.get_serializer_context()).data)

    @extend_schema(
        tags=["bookings"],
        parameters=[OpenApiParameter("document_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF.")},
        summary="Download one of the booking's documents",
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"documents/(?P<document_id>[^/.]+)",
        url_name="document",
        renderer_classes=[renderers.JSONRenderer, PDFRenderer],
    )
    def document(self, request, pk=None, document_id=None):
        booking = self.get_object()
        try:
            document_id = uuid.UUID(document_id)
        except ValueError:
            raise Http404("No such document.") from None
        document = Document.objects.filter(pk=document_id, booking=booking).first()
        if document is None:
            raise Http404("No such document on this booking.")
        return private_download(document.content, document.filename, "application/pdf")
