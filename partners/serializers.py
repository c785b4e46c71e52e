from rest_framework import serializers

from partners.models import Agency, Contract, PartnerUser
from tenants.serializers import TenantRelatedField


class AgencySerializer(serializers.ModelSerializer):
    class Meta:
        model = Agency
        fields = [
            "id",
            "legal_name",
            "trading_name",
            "country",
            "tax_id",
            "currency",
            "email",
            "phone",
            "address",
            "status",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]


class ContractSerializer(serializers.ModelSerializer):
    agency = TenantRelatedField(Agency)
    currency = serializers.CharField(source="agency.currency", read_only=True)

    class Meta:
        model = Contract
        fields = [
            "id",
            "agency",
            "model",
            "commission_percent",
            "payment_terms_days",
            "credit_limit",
            "currency",
            "valid_from",
            "valid_to",
            "notes",
            "created_at",
        ]
        read_only_fields = ["id", "currency", "created_at"]


class PartnerUserSerializer(serializers.ModelSerializer):
    agency = TenantRelatedField(Agency)
    email = serializers.EmailField(source="user.email")
    full_name = serializers.CharField(
        source="user.full_name", required=False, allow_blank=True, max_length=200
    )

    class Meta:
        model = PartnerUser
        fields = ["id", "agency", "email", "full_name", "is_agency_admin", "is_active", "created_at"]
        read_only_fields = ["id", "is_active", "created_at"]
