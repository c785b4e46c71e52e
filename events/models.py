"""The transactional outbox: a domain change and the event that announces it are written in one transaction, so
neither exists without the other. Consumers remember which events they handled, so a redelivered event does
nothing the second time."""

from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q

from core.ids import uuid7
from tenants.models import TenantModel


class OutboxEvent(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    name = models.CharField(max_length=64, help_text="e.g. booking.confirmed")
    aggregate_type = models.CharField(max_length=64)
    aggregate_id = models.CharField(max_length=64)
    payload = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["tenant", "created_at"], name="outbox_unpublished", condition=Q(published_at=None)
            ),
            models.Index(fields=["tenant", "aggregate_type", "aggregate_id"], name="outbox_by_aggregate"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.aggregate_type}:{self.aggregate_id}"


class ProcessedEvent(TenantModel):
    """One consumer has handled one event (written in the consumer's own transaction)."""

    id = models.BigAutoField(primary_key=True)
    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="processed_by")
    consumer = models.CharField(max_length=100)
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "event", "consumer"], name="processedevent_once_per_consumer"
            )
        ]

    def __str__(self) -> str:
        return f"{self.consumer} ← {self.event_id}"


class DeadLetter(TenantModel):
    """A consumer gave up on an event after its retries; staff can see why and retry it."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="dead_letters")
    consumer = models.CharField(max_length=100)
    error = models.TextField()
    attempts = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["tenant", "created_at"], name="deadletter_open", condition=Q(resolved_at=None)
            )
        ]

    def __str__(self) -> str:
        return f"{self.consumer} failed on {self.event}"
