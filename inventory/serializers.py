import datetime as dt

from rest_framework import serializers

from inventory.models import Allotment, Departure, Hold
from partners.models import Agency
from tenants.serializers import TenantRelatedField
from tours.models import Channel, Option


class DepartureSerializer(serializers.ModelSerializer):
    free = serializers.IntegerField(
        read_only=True, help_text="Seats for general sale (lazily expired holds count as held)."
    )

    class Meta:
        model = Departure
        fields = [
            "id",
            "tour",
            "option",
            "starts_at",
            "ends_at",
            "local_date",
            "capacity",
            "allotted",
            "held",
            "sold",
            "free",
            "status",
            "cutoff_minutes",
            "notes",
        ]
        read_only_fields = fields


class DepartureCreateSerializer(serializers.Serializer):
    option = TenantRelatedField(Option)
    starts_local = serializers.CharField(
        max_length=19, help_text="Local start in the tour's time zone, without offset: 2027-05-01T09:00."
    )
    capacity = serializers.IntegerField(min_value=1, max_value=100_000)
    cutoff_minutes = serializers.IntegerField(min_value=0, max_value=60 * 24 * 60, default=60)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")

    def validate_starts_local(self, value: str) -> dt.datetime:
        # Parsed here, not by DateTimeField: that one would silently read a naive time as UTC, or drop an offset.
        try:
            starts = dt.datetime.fromisoformat(value)
        except ValueError:
            raise serializers.ValidationError("A local date and time, e.g. 2027-05-01T09:00.") from None
        if starts.tzinfo is not None:
            raise serializers.ValidationError(
                "Give the local time in the tour's time zone without an offset, e.g. 2027-05-01T09:00."
            )
        return starts


class DepartureChangeSerializer(serializers.Serializer):
    capacity = serializers.IntegerField(min_value=0, max_value=100_000, required=False)
    status = serializers.ChoiceField(choices=Departure.Status.choices, required=False)


class HoldSerializer(serializers.ModelSerializer):
    class Meta:
        model = Hold
        fields = [
            "id",
            "departure",
            "channel",
            "agency",
            "units",
            "seats",
            "seats_from_allotment",
            "status",
            "expires_at",
            "created_at",
        ]
        read_only_fields = fields


class HoldCreateSerializer(serializers.Serializer):
    departure = TenantRelatedField(Departure)
    units = serializers.DictField(
        child=serializers.IntegerField(min_value=0, max_value=1000), allow_empty=False
    )
    channel = serializers.ChoiceField(choices=Channel.choices, required=False, help_text="Staff only.")
    agency = TenantRelatedField(Agency, required=False, help_text="Staff only: hold for this agency.")


class HoldExtendSerializer(serializers.Serializer):
    seconds = serializers.IntegerField(min_value=1, max_value=24 * 3600)


class AllotmentSerializer(serializers.ModelSerializer):
    agency = TenantRelatedField(Agency)
    departure = TenantRelatedField(Departure)
    remaining = serializers.IntegerField(read_only=True)

    class Meta:
        model = Allotment
        fields = [
            "id",
            "agency",
            "departure",
            "seats",
            "used",
            "remaining",
            "release_at",
            "status",
            "created_at",
        ]
        read_only_fields = ["id", "used", "remaining", "status", "created_at"]


class AllotmentResizeSerializer(serializers.Serializer):
    seats = serializers.IntegerField(min_value=1, max_value=100_000)
