"""The seat movements every capacity service shares.

Seats follow the global lock order (``core.locking.LOCK_ORDER``): hold rows, then the departure row, then allotment
rows. A writer that needs an allotment row first takes the departure row (``lock_departure``), even when it would not
change it otherwise. The few that lock hold rows after the departure use SKIP LOCKED, so they never wait for them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from core.locking import UPDATE, lock_row, lock_rows
from inventory.cache import bump_availability
from inventory.models import Allotment, Departure, Hold

DEPARTURE_TABLE = Departure._meta.db_table
ALLOTMENT_TABLE = Allotment._meta.db_table


@dataclass(frozen=True)
class EndingHold:
    """What a hold gives back when it ends."""

    id: uuid.UUID
    departure_id: uuid.UUID
    seats: int
    seats_from_allotment: int
    allotment_id: uuid.UUID | None


_ENDING_FIELDS = ("id", "departure_id", "seats", "seats_from_allotment", "allotment_id")


def ending_holds(queryset: QuerySet[Hold]) -> list[EndingHold]:
    return [EndingHold(*row) for row in queryset.values_list(*_ENDING_FIELDS)]


def lock_ending_holds(queryset: QuerySet[Hold], **options: Any) -> list[EndingHold]:
    """Lock the holds of ``queryset`` (with ``lock_rows`` options) and return what each gives back when it ends."""
    return [
        EndingHold(*(getattr(hold, name) for name in _ENDING_FIELDS))
        for hold in lock_rows(queryset, **options)
    ]


def lock_departure(departure_id: uuid.UUID) -> Departure:
    """The departure row locked as a seat UPDATE would lock it (inserts of holds referencing it still go on)."""
    return lock_row(Departure, pk=departure_id)


def end_holds(
    holds: Iterable[EndingHold], status: str, now: dt.datetime, tenant_id: uuid.UUID, tour_ids: dict
) -> int:
    """Mark these (already locked) active holds ``status`` and give their seats back: seats that came from a
    still-active allotment return to it, the rest to general sale. Returns the number of holds ended."""
    holds = list(holds)
    if not holds:
        return 0
    Hold.objects.filter(id__in=[hold.id for hold in holds]).update(status=status, ended_at=now)
    by_departure: dict[uuid.UUID, list[EndingHold]] = defaultdict(list)
    for hold in holds:
        by_departure[hold.departure_id].append(hold)
    with connection.cursor() as cursor:
        for departure_id in sorted(
            by_departure
        ):  # sorted: two sweeps lock shared departures in the same order
            group = by_departure[departure_id]
            cursor.execute(
                f"UPDATE {DEPARTURE_TABLE} SET held = held - %s WHERE id = %s",
                [sum(hold.seats for hold in group), departure_id],
            )
            from_allotment: dict[uuid.UUID, int] = defaultdict(int)
            for hold in group:
                if hold.allotment_id and hold.seats_from_allotment:
                    from_allotment[hold.allotment_id] += hold.seats_from_allotment
            back_to_allotments = 0
            for allotment_id in sorted(from_allotment):
                seats = from_allotment[allotment_id]
                # ``used`` counts held + sold seats of the block whatever its status; only an active block takes
                # the seats back (a released one already gave its unused seats to general sale).
                cursor.execute(
                    f"UPDATE {ALLOTMENT_TABLE} SET used = used - %s WHERE id = %s RETURNING status",
                    [seats, allotment_id],
                )
                row = cursor.fetchone()
                if row and row[0] == Allotment.Status.ACTIVE:
                    back_to_allotments += seats
            if back_to_allotments:
                cursor.execute(
                    f"UPDATE {DEPARTURE_TABLE} SET allotted = allotted + %s WHERE id = %s",
                    [back_to_allotments, departure_id],
                )
            bump_availability(tenant_id, tour_ids[departure_id])
    return len(holds)


def expire_lazily(departure: Departure, now: dt.datetime) -> int:
    """Release this departure's holds that expired but still count as held. Rows another writer holds are skipped:
    that writer is ending them already, or they are the next one's to release."""
    expired = lock_ending_holds(
        Hold.objects.filter(departure_id=departure.id, status=Hold.Status.ACTIVE, expires_at__lte=now),
        skip_locked=True,
        strength=UPDATE,
    )
    return end_holds(
        expired, Hold.Status.EXPIRED, now, departure.tenant_id, {departure.id: departure.tour_id}
    )


def seat_counts(departure_id: uuid.UUID) -> Departure:
    """A fresh read of the departure (after a refused conditional UPDATE, to explain why)."""
    return Departure.objects.get(pk=departure_id)
