"""Check-in over the API, for guides' apps: look a voucher's code up (GET), then check travellers in (POST).
Staff members with ``bookings.check_in`` only; an agency's bookers never."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from bookings.services import checkin
from tenants.permissions import HasApiAccess, IsTenantMember


class CanCheckIn(permissions.BasePermission):
    message = "Your role may not check travellers in."

    def has_permission(self, request, view) -> bool:
        return IsTenantMember().has_permission(request, view) and request.user.has_perm("bookings.check_in")


class CheckInRequestSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=64, help_text="The voucher's code, from its QR code or typed.")
    travellers = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        allow_empty=False,
        max_length=500,
        help_text="Only these travellers (each refused if already in); when left out, everyone not yet checked in.",
    )


class CheckInTravellerSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    unit_code = serializers.CharField()
    checked_in_at = serializers.DateTimeField(allow_null=True)


class CheckInDepartureSerializer(serializers.Serializer):
    tour = serializers.CharField()
    option = serializers.CharField()
    starts_at = serializers.DateTimeField(help_text="UTC.")
    time_zone = serializers.CharField(help_text="The tour's: show the start time in it.")
    meeting_point = serializers.CharField()


class CheckInSheetSerializer(serializers.Serializer):
    reference = serializers.CharField(source="booking.reference")
    status = serializers.CharField(source="booking.status")
    can_check_in = serializers.BooleanField()
    departures = CheckInDepartureSerializer(many=True)
    travellers = CheckInTravellerSerializer(many=True)


class CheckInResultSerializer(serializers.Serializer):
    reference = serializers.CharField()
    checked_in = CheckInTravellerSerializer(many=True)


class CheckInView(APIView):
    permission_classes = [HasApiAccess, CanCheckIn]

    @extend_schema(
        tags=["check-in"],
        summary="What a voucher's code shows (changes nothing)",
        parameters=[OpenApiParameter("token", str, required=True, description="The voucher's code.")],
        responses=CheckInSheetSerializer,
    )
    def get(self, request):
        sheet = checkin.check_in_sheet(request.query_params.get("token", ""))
        return Response(CheckInSheetSerializer(sheet).data)

    @extend_schema(
        tags=["check-in"],
        summary="Check a voucher's travellers in (each once; 409 when everyone already is)",
        request=CheckInRequestSerializer,
        responses=CheckInResultSerializer,
    )
    def post(self, request):
        payload = CheckInRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        travellers = checkin.check_in(data["token"], data.get("travellers"))
        reference = travellers[0].booking.reference
        return Response(CheckInResultSerializer({"reference": reference, "checked_in": travellers}).data)
