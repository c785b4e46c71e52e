from rest_framework import serializers

from bookings.models import Booking, BookingItem, StatusChange, Traveller
from inventory.models import Hold
from partners.models import Agency
from tenants.serializers import TenantRelatedField


class LeadSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    email = serializers.EmailField(max_length=254)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")


class TravellerInputSerializer(serializers.Serializer):
    unit_code = serializers.CharField(max_length=30)
    first_name = serializers.CharField(max_length=100)
    last_name = serializers.CharField(max_length=100)
    date_of_birth = serializers.DateField(required=False, allow_null=True, default=None)
    nationality = serializers.RegexField(r"^[A-Z]{2}$", required=False, allow_blank=True, default="")
    passport_number = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    dietary_notes = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    medical_notes = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    answers = serializers.DictField(child=serializers.CharField(max_length=500), required=False, default=dict)


class ConsentSerializer(serializers.Serializer):
    terms_version = serializers.CharField(max_length=40)
    marketing_opt_in = serializers.BooleanField(default=False)


class BookingCreateSerializer(serializers.Serializer):
    holds = serializers.ListField(child=TenantRelatedField(Hold), min_length=1, max_length=10)
    lead = LeadSerializer()
    travellers = TravellerInputSerializer(many=True, required=False, default=list)
    language = serializers.CharField(max_length=8, default="en")
    agent_reference = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    on_account = serializers.BooleanField(default=False)
    promo_code = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    consent = ConsentSerializer(required=False)
    agency = TenantRelatedField(Agency, required=False, help_text="Staff only: book for this agency.")


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class BookingItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = BookingItem
        fields = ["id", "departure", "option", "hold", "units", "seats", "total", "quote"]


class TravellerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Traveller
        fields = [
            "id",
            "unit_code",
            "first_name",
            "last_name",
            "date_of_birth",
            "nationality",
            "checked_in_at",
        ]


class StatusChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = StatusChange
        fields = ["from_status", "to_status", "reason", "actor_label", "created_at"]


class BookingSerializer(serializers.ModelSerializer):
    balance = serializers.IntegerField(read_only=True)
    items = BookingItemSerializer(many=True, read_only=True)
    travellers = TravellerSerializer(many=True, read_only=True)
    status_history = StatusChangeSerializer(many=True, read_only=True)

    class Meta:
        model = Booking
        fields = [
            "id",
            "reference",
            "status",
            "channel",
            "language",
            "lead_name",
            "lead_email",
            "lead_phone",
            "agency",
            "agent_reference",
            "on_account",
            "currency",
            "total",
            "paid",
            "balance",
            "expires_at",
            "confirmed_at",
            "cancelled_at",
            "created_at",
            "items",
            "travellers",
            "status_history",
        ]
        read_only_fields = fields
