"""Departures: one-off or generated from schedules, capacity edits, closing, reopening, cancelling, closures."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import TypeGuard
from zoneinfo import ZoneInfo

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from core.errors import ConflictError, DomainError
from core.locking import UPDATE, lock_rows
from inventory.cache import bump_availability
from inventory.models import Allotment, Closure, Departure, Hold, Schedule
from inventory.schedules import is_nonexistent, local_to_utc, occurrences
from inventory.search import bump_catalogue
from inventory.services._seats import DEPARTURE_TABLE, end_holds, expire_lazily, lock_ending_holds
from tours.models import Option, Tour

# Generated departures run this far ahead; the nightly task moves the horizon on.
GENERATION_HORIZON_DAYS = 183


def departures_changed(tenant_id: uuid.UUID, tour_id: uuid.UUID) -> None:
    """Departures appeared, closed or reopened: availability answers and search listings (which filter on open
    departures) are both out of date once this commits."""
    bump_availability(tenant_id, tour_id)
    bump_catalogue(tenant_id)


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_seats_and_cutoff(capacity: object, cutoff_minutes: object, fields: dict[str, str]) -> None:
    if not _is_count(capacity) or capacity < 1:
        fields["capacity"] = "A whole number of seats, 1 or more."
    if not _is_count(cutoff_minutes) or cutoff_minutes < 0:
        fields["cutoff_minutes"] = "Minutes before the start, 0 or more."


def _departure_fields(option: Option, starts_at: dt.datetime, local_date: dt.date) -> dict:
    return {
        "tour_id": option.tour_id,
        "option_id": option.id,
        "starts_at": starts_at,
        "ends_at": starts_at + dt.timedelta(minutes=option.tour.duration_minutes),
        "local_date": local_date,
    }


def create_departure(
    option: Option,
    starts_local: dt.datetime,
    capacity: int,
    cutoff_minutes: int = 60,
    notes: str = "",
) -> Departure:
    """A one-off departure at ``starts_local``, a naive wall-clock time in the tour's time zone."""
    fields: dict[str, str] = {}
    _check_seats_and_cutoff(capacity, cutoff_minutes, fields)
    zone = ZoneInfo(option.tour.time_zone)
    if not isinstance(starts_local, dt.datetime) or starts_local.tzinfo is not None:
        fields["starts_local"] = f"A local date and time without time zone (the tour's zone is {zone.key})."
    elif is_nonexistent(starts_local, zone):
        fields["starts_local"] = (
            f"{starts_local:%Y-%m-%d %H:%M} does not exist in {zone.key} (clocks go forward)."
        )
    elif local_to_utc(starts_local, zone) <= timezone.now():
        fields["starts_local"] = "That time has passed."
    if not option.is_active:
        fields["option"] = f"{option} is not active."
    if fields:
        raise DomainError("The departure is not valid.", code="invalid_departure", fields=fields)
    starts_at = local_to_utc(starts_local, zone)
    try:
        with transaction.atomic():
            departure = Departure.objects.create(
                **_departure_fields(option, starts_at, starts_local.date()),
                capacity=capacity,
                cutoff_minutes=cutoff_minutes,
                notes=notes,
            )
    except IntegrityError as error:
        raise ConflictError(
            f"{option} already departs at {starts_local:%Y-%m-%d %H:%M}.",
            code="departure_exists",
            fields={"starts_local": "A departure of this option starts at this time already."},
        ) from error
    departures_changed(departure.tenant_id, departure.tour_id)
    return departure


def create_schedule(
    option: Option,
    start_date: dt.date,
    end_date: dt.date,
    weekdays: int,
    times: list[dt.time],
    capacity: int,
    cutoff_minutes: int = 60,
) -> Schedule:
    """A recurrence, validated; its departures come from ``generate_departures``."""
    fields: dict[str, str] = {}
    _check_seats_and_cutoff(capacity, cutoff_minutes, fields)
    if not isinstance(start_date, dt.date) or not isinstance(end_date, dt.date) or end_date < start_date:
        fields["end_date"] = "On or after the start date."
    if not _is_count(weekdays) or not 1 <= weekdays <= 127:
        fields["weekdays"] = "A bit mask of weekdays: Monday = 1 … Sunday = 64 (127 = every day)."
    if not times or not all(isinstance(time, dt.time) and time.tzinfo is None for time in times):
        fields["times"] = "One or more local start times."
    if fields:
        raise DomainError("The schedule is not valid.", code="invalid_schedule", fields=fields)
    return Schedule.objects.create(
        option=option,
        start_date=start_date,
        end_date=end_date,
        weekdays=weekdays,
        times=sorted(set(times)),
        capacity=capacity,
        cutoff_minutes=cutoff_minutes,
    )


def _closed_dates(
    tour_id: uuid.UUID, option_id: uuid.UUID, first: dt.date, last: dt.date
) -> list[tuple[dt.date, dt.date]]:
    return list(
        Closure.objects.filter(tour_id=tour_id, start_date__lte=last, end_date__gte=first)
        .filter(Q(option__isnull=True) | Q(option_id=option_id))
        .values_list("start_date", "end_date")
    )


def generate_departures(
    schedule: Schedule, until: dt.date | None = None, now: dt.datetime | None = None
) -> int:
    """Create the schedule's missing future departures up to ``until`` (default: the rolling horizon), skipping
    closures. Existing departures of the option at the same instant are left alone. Returns how many were made."""
    now = now or timezone.now()
    option = Option.objects.select_related("tour").get(pk=schedule.option_id)
    zone = ZoneInfo(option.tour.time_zone)
    today = now.astimezone(zone).date()
    last = min(schedule.end_date, until or today + dt.timedelta(days=GENERATION_HORIZON_DAYS))
    first = max(schedule.start_date, today)
    if last < first:
        return 0
    closed = _closed_dates(option.tour_id, option.id, first, last)
    wanted = [
        occurrence
        for occurrence in occurrences(first, last, schedule.weekdays, schedule.times, zone)
        if occurrence.starts_at > now
        and not any(start <= occurrence.local_date <= end for start, end in closed)
    ]
    if not wanted:
        return 0
    existing = set(
        Departure.objects.filter(
            option_id=option.id, starts_at__gte=wanted[0].starts_at, starts_at__lte=wanted[-1].starts_at
        ).values_list("starts_at", flat=True)
    )
    missing = [occurrence for occurrence in wanted if occurrence.starts_at not in existing]
    # ignore_conflicts: a concurrent run (the nightly task and a staff extension) may insert the same instants.
    Departure.objects.bulk_create(
        [
            Departure(
                **_departure_fields(option, occurrence.starts_at, occurrence.local_date),
                schedule=schedule,
                capacity=schedule.capacity,
                cutoff_minutes=schedule.cutoff_minutes,
                tenant_id=schedule.tenant_id,
            )
            for occurrence in missing
        ],
        ignore_conflicts=True,
        batch_size=500,
    )
    if missing:
        departures_changed(schedule.tenant_id, option.tour_id)
    return len(missing)


def extend_schedule(schedule: Schedule, new_end_date: dt.date) -> int:
    """Move the schedule's end later and generate the new departures; returns how many were made."""
    if not isinstance(new_end_date, dt.date) or new_end_date < schedule.end_date:
        raise DomainError(
            f"The schedule already runs to {schedule.end_date}; give a later end date.",
            code="invalid_schedule",
            fields={"new_end_date": f"On or after {schedule.end_date}."},
        )
    Schedule.objects.filter(pk=schedule.pk).update(end_date=new_end_date)
    schedule.end_date = new_end_date
    return generate_departures(schedule, until=new_end_date)


def change_capacity(departure: Departure, capacity: int) -> Departure:
    """Set the capacity; refused below the seats already allotted, held and sold."""
    if not _is_count(capacity) or capacity < 1:
        raise DomainError(
            "Capacity must be a whole number of seats, 1 or more.",
            code="invalid_capacity",
            fields={"capacity": "1 or more."},
        )
    now = timezone.now()
    with transaction.atomic():
        expire_lazily(departure, now)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {DEPARTURE_TABLE} SET capacity = %(c)s WHERE id = %(id)s AND allotted + held + sold <= %(c)s",
                {"c": capacity, "id": departure.id},
            )
            changed = cursor.rowcount == 1
        fresh = Departure.objects.get(pk=departure.pk)
        if not changed:
            minimum = fresh.allotted + fresh.held + fresh.sold
            raise ConflictError(
                f"Capacity cannot go below {minimum}: {fresh.allotted} allotted to partners, {fresh.held} held, "
                f"{fresh.sold} sold.",
                code="capacity_below_taken",
                fields={"capacity": f"At least {minimum}."},
            )
    bump_availability(fresh.tenant_id, fresh.tour_id)
    return fresh


def _set_status(departure: Departure, to: str, allowed_from: tuple[str, ...], verb: str) -> Departure:
    with transaction.atomic():
        changed = Departure.objects.filter(pk=departure.pk, status__in=allowed_from).update(status=to)
        fresh = Departure.objects.get(pk=departure.pk)
        if not changed and fresh.status != to:
            raise ConflictError(
                f"{fresh} is {fresh.get_status_display().lower()}; it cannot be {verb}.",
                code="invalid_status",
            )
    departures_changed(fresh.tenant_id, fresh.tour_id)
    return fresh


def close_departure(departure: Departure) -> Departure:
    """Stop sales; existing holds and sales stay."""
    return _set_status(departure, Departure.Status.CLOSED, (Departure.Status.OPEN,), "closed")


def reopen_departure(departure: Departure) -> Departure:
    return _set_status(departure, Departure.Status.OPEN, (Departure.Status.CLOSED,), "reopened")


def cancel_departure(departure: Departure) -> Departure:
    """Cancel a departure with no seats sold: its active holds are released and its allotments end.

    The status changes first, in one conditional UPDATE: from then on no hold can be placed or converted on it, so
    the holds found next are all there will be. Hold rows another writer is ending are skipped (that writer gives
    their seats back itself), which also keeps this from waiting on hold rows while it has the departure locked."""
    now = timezone.now()
    with transaction.atomic():
        cancelled = (
            Departure.objects.filter(pk=departure.pk, sold=0)
            .exclude(status=Departure.Status.CANCELLED)
            .update(status=Departure.Status.CANCELLED)
        )
        fresh = Departure.objects.get(pk=departure.pk)
        if not cancelled:
            if fresh.status == Departure.Status.CANCELLED:
                return fresh
            raise ConflictError(
                f"{fresh} has {fresh.sold} seats sold; cancel those bookings first.",
                code="departure_has_sales",
            )
        holds = lock_ending_holds(
            Hold.objects.filter(departure_id=fresh.id, status=Hold.Status.ACTIVE),
            skip_locked=True,
            strength=UPDATE,
        )
        end_holds(holds, Hold.Status.RELEASED, now, fresh.tenant_id, {fresh.id: fresh.tour_id})
        Allotment.objects.filter(departure_id=fresh.id, status=Allotment.Status.ACTIVE).update(
            status=Allotment.Status.RELEASED
        )
        Departure.objects.filter(pk=fresh.pk).update(allotted=0)
        fresh.refresh_from_db()
    departures_changed(fresh.tenant_id, fresh.tour_id)
    return fresh


@dataclass
class ClosureResult:
    closure: Closure
    closed: list[Departure] = field(default_factory=list)
    not_closed: list[Departure] = field(default_factory=list)  # seats held or sold: staff decide


def add_closure(
    tour: Tour, start_date: dt.date, end_date: dt.date, reason: str, option: Option | None = None
) -> ClosureResult:
    """Record that the tour (or one option) does not run on these dates and close its open departures on them
    that have no seats held or sold; the others are reported, not touched."""
    fields: dict[str, str] = {}
    if not isinstance(start_date, dt.date) or not isinstance(end_date, dt.date) or end_date < start_date:
        fields["end_date"] = "On or after the start date."
    if not isinstance(reason, str) or not reason.strip():
        fields["reason"] = "Say why (staff and guides see it)."
    if option is not None and option.tour_id != tour.id:
        fields["option"] = f"{option} is not an option of {tour}."
    if fields:
        raise DomainError("The closure is not valid.", code="invalid_closure", fields=fields)
    now = timezone.now()
    with transaction.atomic():
        closure = Closure.objects.create(
            tour=tour, option=option, start_date=start_date, end_date=end_date, reason=reason.strip()
        )
        in_range = Departure.objects.filter(
            tour_id=tour.id,
            local_date__gte=start_date,
            local_date__lte=end_date,
            status=Departure.Status.OPEN,
        )
        if option is not None:
            in_range = in_range.filter(option_id=option.id)
        # Rows locked in id order up front (a bulk UPDATE locks in scan order, which deadlocks with other writers).
        open_ids = [departure.id for departure in lock_rows(in_range)]
        for departure in in_range.filter(held__gt=0).order_by("id"):
            expire_lazily(departure, now)  # expired holds do not keep a departure open
        # The conditions are re-checked by the UPDATE itself: a hold placed meanwhile keeps its departure open.
        Departure.objects.filter(id__in=open_ids, status=Departure.Status.OPEN, held=0, sold=0).update(
            status=Departure.Status.CLOSED
        )
        result = ClosureResult(closure=closure)
        for departure in Departure.objects.filter(id__in=open_ids).order_by("starts_at"):
            if departure.status == Departure.Status.CLOSED:
                result.closed.append(departure)
            else:
                result.not_closed.append(departure)
    departures_changed(tour.tenant_id, tour.id)
    return result
