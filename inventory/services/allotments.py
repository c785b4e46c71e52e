"""Allotments: a block of a departure's seats reserved for one partner agency until its release time.

Seats move between general sale and the block only by conditional UPDATEs on the departure row; the allotment row
is changed after the departure row is locked (the lock order of ``_seats``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import TypeGuard

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from core.errors import ConflictError, DomainError
from core.locking import lock_row, lock_rows
from inventory.cache import bump_availability
from inventory.models import Allotment, Departure
from inventory.services._seats import ALLOTMENT_TABLE, DEPARTURE_TABLE, expire_lazily, lock_departure
from partners.models import Agency


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_agency(agency: Agency, fields: dict[str, str]) -> None:
    status = Agency.objects.filter(pk=agency.pk).values_list("status", flat=True).first()
    if status != Agency.Status.ACTIVE:
        fields["agency"] = f"{agency} is not active (status: {status or 'unknown'})."


def _take_from_general_sale(departure: Departure, seats: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {DEPARTURE_TABLE} SET allotted = allotted + %(n)s
            WHERE id = %(id)s AND status = 'open' AND capacity - allotted - held - sold >= %(n)s
            """,
            {"n": seats, "id": departure.id},
        )
        if cursor.rowcount == 1:
            return
    fresh = Departure.objects.get(pk=departure.pk)
    if fresh.status != Departure.Status.OPEN:
        raise ConflictError(f"{fresh} is {fresh.get_status_display().lower()}.", code="departure_not_open")
    raise ConflictError(
        f"Only {max(fresh.free, 0)} seats are free for general sale on {fresh}; {seats} asked for.",
        code="not_enough_seats",
        fields={"seats": f"At most {max(fresh.free, 0)}."},
    )


def create_allotment(agency: Agency, departure: Departure, seats: int, release_at: dt.datetime) -> Allotment:
    """Reserve ``seats`` of the departure's general sale for ``agency`` until ``release_at``."""
    fields: dict[str, str] = {}
    if not _is_count(seats) or seats < 1:
        fields["seats"] = "A whole number of seats, 1 or more."
    if not isinstance(release_at, dt.datetime) or release_at.tzinfo is None:
        fields["release_at"] = "A date and time with its time zone."
    elif release_at > departure.starts_at:
        fields["release_at"] = "Before the departure starts."
    elif release_at <= timezone.now():
        fields["release_at"] = "In the future: an allotment released at once reserves nothing."
    _check_agency(agency, fields)
    if fields:
        raise DomainError("The allotment is not valid.", code="invalid_allotment", fields=fields)
    try:
        with transaction.atomic():
            expire_lazily(departure, timezone.now())
            _take_from_general_sale(departure, seats)
            allotment = Allotment.objects.create(
                agency=agency, departure_id=departure.id, seats=seats, release_at=release_at
            )
    except IntegrityError as error:
        raise ConflictError(
            f"{agency} already has an allotment on {departure}; resize it instead.",
            code="allotment_exists",
            fields={"departure": "This agency already has an allotment here."},
        ) from error
    bump_availability(departure.tenant_id, departure.tour_id)
    return allotment


def create_allotments(
    agency: Agency, departures: Iterable[Departure], seats: int, release_days_before: int
) -> list[Allotment]:
    """The same block on each departure (a range), released ``release_days_before`` days before each start;
    returned in the order given. All or nothing: if one departure cannot give the seats, none is allotted and the error names them all."""
    departures = list(departures)
    if not _is_count(release_days_before) or release_days_before < 0:
        raise DomainError(
            "Release days must be 0 or more.",
            code="invalid_allotment",
            fields={"release_days_before": "A whole number of days, 0 or more."},
        )
    if not departures:
        raise DomainError(
            "Choose at least one departure.", code="invalid_allotment", fields={"departures": "Empty."}
        )
    created: dict = {}
    problems: dict[str, str] = {}
    with transaction.atomic():
        # In id order, the order the sweeps lock departures in, so that a range and a sweep never wait in a circle.
        for departure in sorted(departures, key=lambda d: d.pk):
            try:
                with transaction.atomic():
                    created[departure.pk] = create_allotment(
                        agency, departure, seats, departure.starts_at - dt.timedelta(days=release_days_before)
                    )
            except DomainError as error:
                if error.code == "invalid_allotment":
                    raise
                problems[str(departure.id)] = error.message
        if problems:
            raise ConflictError(
                f"{len(problems)} of {len(departures)} departures cannot take the allotment; nothing was allotted.",
                code="allotment_not_possible",
                fields={"departures": problems},
            )
    return [created[departure.pk] for departure in departures]


def release_allotment(allotment: Allotment, now: dt.datetime | None = None) -> Allotment:
    """Unused seats go back to general sale; seats held or sold from the block stay where they are."""
    with transaction.atomic():
        lock_departure(allotment.departure_id)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {ALLOTMENT_TABLE} SET status = 'released' WHERE id = %s AND status = 'active' "
                "RETURNING seats - used",
                [allotment.pk],
            )
            row = cursor.fetchone()
            if row and row[0]:
                cursor.execute(
                    f"UPDATE {DEPARTURE_TABLE} SET allotted = allotted - %s WHERE id = %s",
                    [row[0], allotment.departure_id],
                )
        fresh = Allotment.objects.select_related("departure").get(pk=allotment.pk)
    if row:
        bump_availability(fresh.tenant_id, fresh.departure.tour_id)
    return fresh


def release_allotments(allotments: Sequence[Allotment], now: dt.datetime | None = None) -> list[Allotment]:
    """Release several blocks in one transaction (staff's bulk action): their departures are locked up front in
    primary-key order (the lock order), then each block is released."""
    with transaction.atomic():
        lock_rows(Departure.objects.filter(pk__in={allotment.departure_id for allotment in allotments}))
        return [release_allotment(allotment, now) for allotment in allotments]


def release_due_allotments(now: dt.datetime | None = None, limit: int = 500) -> int:
    """Release active allotments whose release time has come (the beat task); returns how many.

    The departure rows are locked first (lock order) with SKIP LOCKED: a departure busy with a sale is taken by
    the next run, a minute later, instead of making this one wait."""
    now = now or timezone.now()
    with transaction.atomic():
        lapsed = Allotment.objects.filter(status=Allotment.Status.ACTIVE, release_at__lte=now)
        departures = lock_rows(
            Departure.objects.filter(pk__in=lapsed.values("departure_id")).order_by("pk")[:limit],
            skip_locked=True,
        )
        due = list(
            lapsed.filter(departure__in=departures)
            .select_related("departure")
            .order_by("departure_id")[:limit]
        )
        for allotment in due:
            release_allotment(allotment, now)
    return len(due)


def resize_allotment(allotment: Allotment, seats: int) -> Allotment:
    """Grow the block from general sale or shrink it back to general sale; never below the seats used."""
    if not _is_count(seats) or seats < 1:
        raise DomainError(
            "An allotment has 1 seat or more; release it instead.",
            code="invalid_allotment",
            fields={"seats": "1 or more."},
        )
    with transaction.atomic():
        lock_departure(allotment.departure_id)
        current = lock_row(Allotment.objects.select_related("departure"), pk=allotment.pk)
        if current.status != Allotment.Status.ACTIVE:
            raise ConflictError("This allotment was released; create a new one.", code="allotment_released")
        if seats < current.used:
            raise ConflictError(
                f"{current.used} seats of this allotment are held or sold; it cannot shrink below that.",
                code="allotment_below_used",
                fields={"seats": f"At least {current.used}."},
            )
        change = seats - current.seats
        if change > 0:
            expire_lazily(current.departure, timezone.now())
            _take_from_general_sale(current.departure, change)
        elif change < 0:
            Departure.objects.filter(pk=current.departure_id).update(allotted=F("allotted") + change)
        current.seats = seats
        current.save(update_fields=["seats"])
    bump_availability(current.tenant_id, current.departure.tour_id)
    return current


def release_lapsed_allotments(departure_id: uuid.UUID, now: dt.datetime) -> int:
    """Release this departure's allotments whose release time has passed (the beat task does it every few
    minutes; a write on the departure must not wait for it, or an agency would keep using a lapsed block and
    general sale would be refused seats that availability already shows as free)."""
    lapsed = list(
        Allotment.objects.filter(
            departure_id=departure_id, status=Allotment.Status.ACTIVE, release_at__lte=now
        )
        .order_by("id")
        .only("id", "departure_id")
    )
    for allotment in lapsed:
        release_allotment(allotment, now)
    return len(lapsed)
