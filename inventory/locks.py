"""Row locks on seats (the mechanism and the global lock order are ``core.locking``'s): hold rows, then their
departure rows, each in primary-key order."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.db.models import QuerySet

from core.locking import lock_rows
from inventory.models import Departure, Hold


def lock_seats(holds: QuerySet[Hold], departure_ids: Iterable[uuid.UUID]) -> None:
    """Lock ``holds``, then the departures ``departure_ids``, before moving any of their seats: two writers moving
    seats of the same departures (two multi-item bookings confirmed at once, two moves in opposite directions)
    then queue on the same first row instead of each holding one and waiting for the other."""
    lock_rows(holds)
    departure_ids = set(departure_ids)
    if departure_ids:
        lock_rows(Departure.objects.filter(pk__in=departure_ids))
