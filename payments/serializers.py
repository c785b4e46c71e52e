"""The API's view of a booking's money: amounts are integers of minor units with their currency."""

from __future__ import annotations

from rest_framework import serializers

from payments.models import Payment, Refund
from payments.services.refunds import MAX_REQUEST_KEY


class PaymentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Payment
        fields = [
            "id",
            "provider",
            "method",
            "amount",
            "currency",
            "status",
            "refunded",
            "payment_method_summary",
            "provider_reference",
            "failure_code",
            "failure_reason",
            "off_session",
            "created_at",
            "succeeded_at",
        ]
        read_only_fields = fields


class RefundSerializer(serializers.ModelSerializer):
    payment = serializers.UUIDField(source="payment_id", read_only=True)

    class Meta:
        model = Refund
        fields = [
            "id",
            "payment",
            "amount",
            "currency",
            "status",
            "kind",
            "reason",
            "provider_reference",
            "failure_reason",
            "created_at",
            "succeeded_at",
        ]
        read_only_fields = fields


class InstallmentSerializer(serializers.Serializer):
    """One line of the schedule (a ``schedules.InstallmentState``): ``covered`` is how much of it the booking's
    net paid amount covers, in order; ``paid`` when it covers all of it."""

    sequence = serializers.IntegerField(source="installment.sequence")
    kind = serializers.CharField(source="installment.kind")
    due_on = serializers.DateField(source="installment.due_on")
    amount = serializers.IntegerField(source="installment.amount")
    covered = serializers.IntegerField()
    paid = serializers.BooleanField()
    due = serializers.BooleanField()
    dunning = serializers.CharField(source="installment.dunning")


class LedgerSerializer(serializers.Serializer):
    currency = serializers.CharField()
    total = serializers.IntegerField()
    paid = serializers.IntegerField(help_text="Succeeded payments.")
    refunded = serializers.IntegerField(help_text="Succeeded refunds.")
    net_paid = serializers.IntegerField()
    balance = serializers.IntegerField()
    refundable = serializers.IntegerField(
        help_text="What can still be refunded (pending refunds already count)."
    )
    due_now = serializers.IntegerField()


class BookingPaymentsSerializer(serializers.Serializer):
    reference = serializers.CharField()
    ledger = LedgerSerializer()
    schedule = InstallmentSerializer(many=True)
    payments = PaymentSerializer(many=True)
    refunds = RefundSerializer(many=True)


class RefundRequestSerializer(serializers.Serializer):
    amount = serializers.IntegerField(
        min_value=1, help_text="Minor units of the booking's currency (1250 = 12.50 EUR; 1250 = 1.250 KWD)."
    )
    reason = serializers.CharField(max_length=500, help_text="Why the money goes back; kept with the refund.")


class RefundCreatedSerializer(serializers.Serializer):
    refunds = RefundSerializer(many=True)
    ledger = LedgerSerializer()


IDEMPOTENCY_KEY_MAX = MAX_REQUEST_KEY
