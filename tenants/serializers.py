from rest_framework import serializers

from tenants.models import AuditEvent, Membership


class MembershipSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    full_name = serializers.CharField(source="user.full_name", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "full_name", "role", "is_active", "created_at"]
        read_only_fields = fields


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "actor_id",
            "actor_label",
            "action",
            "target_type",
            "target_id",
            "target_label",
            "changes",
            "ip_address",
        ]
        read_only_fields = fields


class TenantRelatedField(serializers.PrimaryKeyRelatedField):
    """A primary-key reference to a row of the current tenant.

    Use it instead of ``PrimaryKeyRelatedField(queryset=Model.objects.all())``: that queryset is built once, when the
    serializer module is imported, and the tenant manager would freeze into it the tenant of whichever request
    imported the module first. This field builds its queryset per use, in the current tenant's context.
    """

    def __init__(self, model, **kwargs):
        self.model = model
        if not kwargs.get("read_only"):
            kwargs["queryset"] = model._base_manager.none()
        super().__init__(**kwargs)

    def get_queryset(self):
        return self.model.objects.all()
