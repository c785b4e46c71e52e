import dataclasses
import json

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from bookings import services
from bookings.models import Booking, BookingItem, Document, StatusChange, Traveller
from inventory.models import Departure, Hold
from partners.models import Agency, PartnerUser
from tenants.permissions import partner_of
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
    language = serializers.ChoiceField(
        choices=[code for code, _name in settings.LANGUAGES],
        default="en",
        help_text="The traveller's: emails, documents and the manage page are in it.",
    )
    agent_reference = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    on_account = serializers.BooleanField(default=False)
    promo_code = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    consent = ConsentSerializer(required=False)
    agency = TenantRelatedField(Agency, required=False, help_text="Staff only: book for this agency.")


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class CancelSerializer(ReasonSerializer):
    refundable = serializers.IntegerField(
        required=False,
        min_value=0,
        help_text="Override the policy's refundable amount (minor units, 0 … paid); needs the permission "
        "bookings.override_refund and a reason.",
    )


class BookingFilterSerializer(serializers.Serializer):
    """List filters (query parameters); dates are ISO dates."""

    # Plain text checked against the choices: a second enum of the same choices would collide in the schema.
    status = serializers.CharField(required=False, help_text=", ".join(Booking.Status.values))
    channel = serializers.CharField(required=False, help_text=", ".join(Booking.Channel.values))
    agency = serializers.UUIDField(required=False, help_text="Staff only.")
    departure_from = serializers.DateField(
        required=False, help_text="A departure on or after this local date."
    )
    departure_to = serializers.DateField(
        required=False, help_text="A departure on or before this local date."
    )
    created_from = serializers.DateField(
        required=False, help_text="Created on or after (the operator's date)."
    )
    created_to = serializers.DateField(
        required=False, help_text="Created on or before (the operator's date)."
    )
    reference = serializers.CharField(required=False, max_length=8, help_text="Exact, any case.")
    agent_reference = serializers.CharField(required=False, max_length=64, help_text="Exact.")

    def validate_status(self, value):
        return self._choice(value, Booking.Status.values)

    def validate_channel(self, value):
        return self._choice(value, Booking.Channel.values)

    @staticmethod
    def _choice(value, choices):
        if value not in choices:
            raise serializers.ValidationError(f"One of {', '.join(choices)}.")
        return value

    def validate(self, data):
        for start, end in (("departure_from", "departure_to"), ("created_from", "created_to")):
            if start in data and end in data and data[start] > data[end]:
                raise serializers.ValidationError({end: [f"On or after {start}."]})
        return data


class ModifySerializer(serializers.Serializer):
    item = serializers.UUIDField(help_text="The booking item whose units change.")
    units = serializers.DictField(
        child=serializers.IntegerField(min_value=0),
        allow_empty=False,
        help_text='The new count per unit type, e.g. {"adult": 2, "child": 1}.',
    )
    remove_travellers = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        default=list,
        max_length=100,
        help_text="Named travellers who leave (required where a unit type's count drops below those named).",
    )
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class MoveSerializer(serializers.Serializer):
    item = serializers.UUIDField(help_text="The booking item that moves.")
    departure = TenantRelatedField(Departure, help_text="Another departure of the same tour.")
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class TravellerChangeSerializer(serializers.Serializer):
    """Traveller fields to change; only those given change."""

    first_name = serializers.CharField(max_length=100, required=False)
    last_name = serializers.CharField(max_length=100, required=False)
    date_of_birth = serializers.DateField(required=False, allow_null=True)
    nationality = serializers.RegexField(r"^[A-Za-z]{2}$", required=False, allow_blank=True)
    passport_number = serializers.CharField(max_length=40, required=False, allow_blank=True)
    dietary_notes = serializers.CharField(max_length=500, required=False, allow_blank=True)
    medical_notes = serializers.CharField(max_length=500, required=False, allow_blank=True)
    answers = serializers.DictField(child=serializers.CharField(max_length=500), required=False)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class TravellersSerializer(serializers.Serializer):
    changes = serializers.DictField(
        child=TravellerChangeSerializer(),
        required=False,
        default=dict,
        help_text="Traveller id → the fields to change.",
    )
    add = TravellerInputSerializer(many=True, required=False, default=list, help_text="Travellers to name.")

    def validate_changes(self, value):
        if len(value) > 100:
            raise serializers.ValidationError("At most 100 travellers at once.")
        return value


class BookingItemSerializer(serializers.ModelSerializer):
    departure_starts_at = serializers.DateTimeField(source="departure.starts_at", read_only=True)
    option_name = serializers.CharField(source="option.name", read_only=True)

    class Meta:
        model = BookingItem
        fields = [
            "id",
            "departure",
            "departure_starts_at",
            "option",
            "option_name",
            "hold",
            "units",
            "seats",
            "total",
            "quote",
        ]


class TravellerSerializer(serializers.ModelSerializer):
    answers = serializers.SerializerMethodField()

    class Meta:
        model = Traveller
        fields = ["id", "unit_code", *services.TRAVELLER_FIELDS, "checked_in_at"]

    @extend_schema_field(serializers.DictField(child=serializers.CharField()))
    def get_answers(self, traveller) -> dict:
        return json.loads(traveller.answers) if traveller.answers else {}


SYSTEM_ACTOR = "system"
OPERATOR_ACTOR = "operator"


class StatusChangeSerializer(serializers.ModelSerializer):
    """One step of the history. An agency's booker sees who of their own agency acted and why, "system", and
    "operator" for the operator's staff, without the staff member's address or their (internal) reason."""

    actor_label = serializers.SerializerMethodField()
    reason = serializers.SerializerMethodField()

    class Meta:
        model = StatusChange
        fields = ["from_status", "to_status", "reason", "actor_label", "created_at"]

    def _agency_labels(self) -> frozenset[str] | None:
        """The labels of the requesting booker's agency colleagues (None: the reader is not a booker). Worked
        out once per answer: the context is shared by every row of it."""
        if "_agency_actor_labels" not in self.context:
            request = self.context.get("request")
            partner = partner_of(request) if request is not None else None
            labels = None
            if partner is not None:
                users = PartnerUser.objects.filter(agency_id=partner.agency_id).select_related("user")
                labels = frozenset(str(account.user) for account in users)
            self.context["_agency_actor_labels"] = labels
        return self.context["_agency_actor_labels"]

    def _by_operator(self, change: StatusChange) -> bool:
        agency_labels = self._agency_labels()
        return (
            agency_labels is not None
            and change.actor_label != SYSTEM_ACTOR
            and change.actor_label not in agency_labels
        )

    def get_actor_label(self, change: StatusChange) -> str:
        return OPERATOR_ACTOR if self._by_operator(change) else change.actor_label

    def get_reason(self, change: StatusChange) -> str:
        return "" if self._by_operator(change) else change.reason


class CancellationTermsSerializer(serializers.Serializer):
    refund_percent = serializers.IntegerField()
    charge = serializers.IntegerField(help_text="Kept by the operator (minor units).")
    credit = serializers.IntegerField(help_text="Taken off the invoice.")
    refundable = serializers.IntegerField(help_text="Goes back of what was paid.")
    days_before = serializers.IntegerField(allow_null=True)


class BookingSerializer(serializers.ModelSerializer):
    """A booking with its items, travellers (in full: staff and the agency that booked them, and typed them in, see
    it all) and status history. ``cancellation`` — what cancelling it now would cost — is given for one open
    booking (detail and actions); in lists it is null. One serializer for both: two components with the same
    status and channel choices would give the schema's enums unstable names."""

    balance = serializers.IntegerField(read_only=True)
    items = BookingItemSerializer(many=True, read_only=True)
    travellers = TravellerSerializer(many=True, read_only=True)
    status_history = StatusChangeSerializer(many=True, read_only=True)
    cancellation = serializers.SerializerMethodField()

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
            "cancellation",
        ]
        read_only_fields = fields

    @extend_schema_field(CancellationTermsSerializer(allow_null=True))
    def get_cancellation(self, booking) -> dict | None:
        if not self.context.get("with_terms") or booking.status not in services.CHANGEABLE:
            return None
        return dataclasses.asdict(services.cancellation_terms(booking))


class DocumentSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Document
        fields = ["id", "kind", "version", "filename", "size", "created_at", "download_url"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_download_url(self, document) -> str:
        return reverse(
            "booking-document",
            kwargs={"pk": document.booking_id, "document_id": document.pk},
            request=self.context.get("request"),
        )
