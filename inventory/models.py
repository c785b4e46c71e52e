"""Seats: departures with their capacity, the holds that take seats for a while, and partner allotments.

Seats move only through ``inventory.services`` by conditional UPDATEs on the departure row; the CHECK constraint
below is the last line of defence (a bug that oversells fails in the database, it does not sell).

    capacity = free for general sale + allotted (reserved for partners, unused) + held + sold
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q

from core.ids import uuid7
from tenants.models import TenantModel
from tours.models import Channel, Option, Tour


class Schedule(TenantModel):
    """A recurrence: departures on these weekdays at these local times between two dates."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    option = models.ForeignKey(Option, on_delete=models.CASCADE, related_name="schedules")
    start_date = models.DateField()
    end_date = models.DateField()
    weekdays = models.PositiveSmallIntegerField(
        default=0b1111111, help_text="Bit mask, Monday = 1, Tuesday = 2 … Sunday = 64; 127 = every day."
    )
    times = ArrayField(models.TimeField(), help_text="Local start times in the tour's time zone.")
    capacity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    cutoff_minutes = models.PositiveIntegerField(
        default=60, help_text="Sales close this long before the start."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__gte=F("start_date")), name="schedule_dates_in_order"
            ),
            models.CheckConstraint(
                condition=Q(weekdays__gte=1, weekdays__lte=127), name="schedule_weekdays_mask"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "option"], name="schedule_tenant_option")]

    def __str__(self) -> str:
        return f"{self.option} {self.start_date} – {self.end_date}"


class Closure(TenantModel):
    """Dates on which a tour (or one option) does not run: no departures are generated, existing ones close."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    tour = models.ForeignKey(Tour, on_delete=models.CASCADE, related_name="closures")
    option = models.ForeignKey(
        Option, on_delete=models.CASCADE, null=True, blank=True, related_name="closures"
    )
    start_date = models.DateField()
    end_date = models.DateField()
    reason = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(end_date__gte=F("start_date")), name="closure_dates_in_order")
        ]
        indexes = [models.Index(fields=["tenant", "tour", "start_date"], name="closure_tenant_tour_start")]

    def __str__(self) -> str:
        return f"{self.tour} closed {self.start_date} – {self.end_date}"


class Departure(TenantModel):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed to sales"
        CANCELLED = "cancelled", "Cancelled"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    tour = models.ForeignKey(Tour, on_delete=models.CASCADE, related_name="departures")
    option = models.ForeignKey(Option, on_delete=models.CASCADE, related_name="departures")
    schedule = models.ForeignKey(
        Schedule, on_delete=models.SET_NULL, null=True, blank=True, related_name="departures"
    )
    starts_at = models.DateTimeField(help_text="UTC.")
    ends_at = models.DateTimeField()
    local_date = models.DateField(help_text="The start date in the tour's time zone (what travellers pick).")
    capacity = models.PositiveIntegerField()
    allotted = models.PositiveIntegerField(
        default=0, editable=False, help_text="Reserved for partners, unused."
    )
    held = models.PositiveIntegerField(default=0, editable=False)
    sold = models.PositiveIntegerField(default=0, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    cutoff_minutes = models.PositiveIntegerField(default=60)
    notes = models.TextField(blank=True, help_text="Guide, vehicle, resources (staff only).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "option", "starts_at"], name="departure_unique_start"),
            models.CheckConstraint(
                condition=Q(held__gte=0, sold__gte=0, allotted__gte=0)
                & Q(capacity__gte=F("held") + F("sold") + F("allotted")),
                name="departure_seats_within_capacity",
            ),
            models.CheckConstraint(
                condition=Q(ends_at__gte=F("starts_at")), name="departure_ends_after_start"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "tour", "local_date"], name="departure_tenant_tour_date"),
            models.Index(
                fields=["tenant", "option", "starts_at"],
                name="departure_open_by_start",
                condition=Q(status="open"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.option} {self.starts_at:%Y-%m-%d %H:%M} UTC"

    @property
    def free(self) -> int:
        """Seats for general sale right now (ignores holds that expired but are not released yet)."""
        return self.capacity - self.allotted - self.held - self.sold


class Allotment(TenantModel):
    """Seats of one departure reserved for one partner agency until ``release_at``, then back to general sale."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        RELEASED = "released", "Released"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    agency = models.ForeignKey("partners.Agency", on_delete=models.CASCADE, related_name="allotments")
    departure = models.ForeignKey(Departure, on_delete=models.CASCADE, related_name="allotments")
    seats = models.PositiveIntegerField(validators=[MinValueValidator(1)], help_text="Seats in the block.")
    used = models.PositiveIntegerField(default=0, editable=False, help_text="Held or sold from the block.")
    release_at = models.DateTimeField(help_text="Unused seats return to general sale at this time.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "agency", "departure"], name="allotment_one_per_departure"
            ),
            models.CheckConstraint(condition=Q(used__lte=F("seats")), name="allotment_used_within_seats"),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "release_at"], name="allotment_active_release", condition=Q(status="active")
            )
        ]

    def __str__(self) -> str:
        return f"{self.agency}: {self.seats} on {self.departure}"

    @property
    def remaining(self) -> int:
        return self.seats - self.used if self.status == self.Status.ACTIVE else 0


class Hold(TenantModel):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        CONVERTED = "converted", "Sold"
        RELEASED = "released", "Released"
        EXPIRED = "expired", "Expired"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    departure = models.ForeignKey(Departure, on_delete=models.PROTECT, related_name="holds")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    agency = models.ForeignKey(
        "partners.Agency", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    allotment = models.ForeignKey(
        Allotment, on_delete=models.PROTECT, null=True, blank=True, related_name="holds"
    )
    units = models.JSONField(help_text='Unit type code → count, e.g. {"adult": 2, "child": 1}.')
    seats = models.PositiveIntegerField(help_text="Seats taken (units that count toward capacity).")
    seats_from_allotment = models.PositiveIntegerField(default=0)
    idempotency_key = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "idempotency_key"], name="hold_unique_idempotency_key"),
            models.CheckConstraint(
                condition=Q(seats_from_allotment__lte=F("seats")), name="hold_allotment_share"
            ),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "expires_at"], name="hold_active_expiry", condition=Q(status="active")
            ),
            models.Index(fields=["tenant", "departure"], name="hold_tenant_departure"),
        ]

    def __str__(self) -> str:
        return f"{self.seats} seats on {self.departure} ({self.get_status_display()})"
