"""Availability: per departure of a tour, its status and the seats the asking channel (and agency) can still book.

Read path only; seats move in ``inventory.services``. Three queries answer a month of departures (departures,
lazily-expired holds, allotments), plus at most four for the batch ``tours.pricing.price_from``. Answers are
cached 60 s under ``inventory.cache.availability_key`` plus the tenant's catalogue version: every seat movement
bumps the tour's version after commit, every catalogue edit (prices, departures' status) the catalogue version, so
an answer cached before either is never read after it.

Seat semantics (see ``inventory.models``): ``capacity = free + allotted + held + sold``. Reads undo what the next
write would do anyway:

- an active hold whose ``expires_at`` has passed still counts in ``held``; its seats are free to the reader. The
  part that came out of an allotment goes back to that allotment if it is still usable, otherwise to general sale;
- an allotment still ``active`` after its ``release_at`` is released lazily too: its unused seats (``allotted``)
  and the allotment share of its expired holds belong to general sale, not to the agency.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.core.cache import cache
from django.db.models import Sum
from django.utils import timezone

from core.errors import DomainError
from core.money import Money
from inventory.cache import AVAILABILITY_TTL, availability_key
from inventory.models import Allotment, Departure, Hold
from inventory.search import catalogue_version
from tenants.models import Tenant
from tours.models import Channel, Option, Tour
from tours.pricing import price_from

if TYPE_CHECKING:
    from partners.models import Agency

MAX_RANGE_DAYS = (
    92  # a quarter: the calendar asks a month at a time; bounds the work a single request can cause
)


class Status:
    AVAILABLE = "available"
    LIMITED = "limited"
    SOLD_OUT = "sold_out"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class DepartureAvailability:
    departure_id: uuid.UUID
    option_id: uuid.UUID
    starts_at: dt.datetime
    local_date: dt.date
    local_time: dt.time
    capacity: int
    seats_left: int
    status: str
    price_from: Money | None = field(default=None)

    def as_dict(self) -> dict:
        return {
            "departure": str(self.departure_id),
            "option": str(self.option_id),
            "starts_at": self.starts_at.isoformat().replace("+00:00", "Z"),
            "local_date": self.local_date.isoformat(),
            "local_time": self.local_time.strftime("%H:%M"),
            "capacity": self.capacity,
            "seats_left": self.seats_left,
            "status": self.status,
            "price_from": self.price_from.as_dict() if self.price_from else None,
        }


def limited_percent(tenant_id) -> int:
    """Below this share of capacity left, a departure shows as LIMITED (each tenant sets its own)."""
    return Tenant.objects.values_list("availability_limited_percent", flat=True).get(pk=tenant_id)


def _validate(
    tour: Tour,
    start_date: object,
    end_date: object,
    channel: object,
    agency: Agency | None,
    option: Option | None,
) -> None:
    fields: dict[str, list[str]] = {}
    if not isinstance(start_date, dt.date) or isinstance(start_date, dt.datetime):
        fields["from"] = ["A date (YYYY-MM-DD) is required."]
    if not isinstance(end_date, dt.date) or isinstance(end_date, dt.datetime):
        fields["to"] = ["A date (YYYY-MM-DD) is required."]
    if not fields:
        if end_date < start_date:
            fields["to"] = ["Must be on or after the start date."]
        elif (end_date - start_date).days >= MAX_RANGE_DAYS:
            fields["to"] = [f"The range may span at most {MAX_RANGE_DAYS} days."]
    if channel not in Channel.values:
        fields["channel"] = [f"Must be one of: {', '.join(Channel.values)}."]
    elif agency is not None and channel != Channel.TRADE:
        fields["agency"] = ["An agency asks through the trade channel."]
    if option is not None and option.tour_id != tour.pk:
        fields["option"] = ["This option belongs to another tour."]
    if fields:
        raise DomainError(
            "The availability request is invalid.", code="invalid_availability_request", fields=fields
        )


def availability(
    tour: Tour,
    start_date: dt.date,
    end_date: dt.date,
    channel: str,
    agency: Agency | None = None,
    option: Option | None = None,
    *,
    currency: str | None = None,
) -> list[DepartureAvailability]:
    """Departures of ``tour`` (optionally one option) whose local date is in [start_date, end_date], cancelled
    ones left out, ordered by start. Must run inside ``tenant_context``. Cached 60 s (versioned)."""
    _validate(tour, start_date, end_date, channel, agency, option)
    # The key (and so the version) is read before the database: a movement that commits while we compute bumps
    # the version, and what we store lands under the old key nobody asks for any more.
    key = availability_key(
        tour.tenant_id,
        tour.pk,
        f"c{catalogue_version(tour.tenant_id)}",  # price and departure edits invalidate too
        option.pk if option else "-",
        start_date.isoformat(),
        end_date.isoformat(),
        channel,
        agency.pk if agency else "-",
        currency or "-",
    )
    cached = cache.get(key)
    if cached is not None:
        return cached
    result = compute_availability(tour, start_date, end_date, channel, agency, option, currency=currency)
    cache.set(key, result, AVAILABILITY_TTL)
    return result


def compute_availability(
    tour: Tour,
    start_date: dt.date,
    end_date: dt.date,
    channel: str,
    agency: Agency | None = None,
    option: Option | None = None,
    *,
    currency: str | None = None,
    now: dt.datetime | None = None,
) -> list[DepartureAvailability]:
    """The uncached answer (``availability`` validates and caches around it)."""
    now = now or timezone.now()
    departures = Departure.objects.filter(
        tour=tour, local_date__gte=start_date, local_date__lte=end_date
    ).exclude(status=Departure.Status.CANCELLED)
    if option is not None:
        departures = departures.filter(option=option)
    rows = list(
        departures.order_by("starts_at").values(
            "id",
            "option_id",
            "starts_at",
            "local_date",
            "capacity",
            "allotted",
            "held",
            "sold",
            "status",
            "cutoff_minutes",
        )
    )
    if not rows:
        return []
    ids = [row["id"] for row in rows]
    usable_allotments, stale_allotments, own_allotment = _allotments(ids, agency, now)
    general_back, own_back = _expired_hold_seats(ids, agency, usable_allotments, now)
    prices = _prices_from(rows, channel, agency, currency)
    threshold = limited_percent(tour.tenant_id)
    tz = _zone(tour.time_zone)

    result = []
    for row in rows:
        departure_id = row["id"]
        free = row["capacity"] - row["allotted"] - row["held"] - row["sold"]
        seats = free + general_back.get(departure_id, 0) + stale_allotments.get(departure_id, 0)
        if agency is not None:
            seats += own_allotment.get(departure_id, 0) + own_back.get(departure_id, 0)
        status = _status(row, seats, threshold, now)
        result.append(
            DepartureAvailability(
                departure_id=departure_id,
                option_id=row["option_id"],
                starts_at=row["starts_at"],
                local_date=row["local_date"],
                local_time=row["starts_at"].astimezone(tz).time().replace(tzinfo=None),
                capacity=row["capacity"],
                seats_left=0 if status == Status.CLOSED else max(seats, 0),
                status=status,
                price_from=prices.get(departure_id),
            )
        )
    return result


def _status(row: dict, seats: int, threshold: int, now: dt.datetime) -> str:
    sales_close = row["starts_at"] - dt.timedelta(minutes=row["cutoff_minutes"])
    if row["status"] != Departure.Status.OPEN or now >= sales_close:
        return Status.CLOSED
    if seats <= 0:
        return Status.SOLD_OUT
    if seats * 100 < row["capacity"] * threshold:
        return Status.LIMITED
    return Status.AVAILABLE


def _allotments(
    departure_ids: list[uuid.UUID], agency: Agency | None, now: dt.datetime
) -> tuple[set[uuid.UUID], dict[uuid.UUID, int], dict[uuid.UUID, int]]:
    """(ids of allotments still usable, unused seats of lapsed allotments per departure, the agency's own unused
    seats per departure). One query."""
    usable: set[uuid.UUID] = set()
    lapsed_unused: dict[uuid.UUID, int] = defaultdict(int)
    own_unused: dict[uuid.UUID, int] = {}
    rows = Allotment.objects.filter(
        departure_id__in=departure_ids, status=Allotment.Status.ACTIVE
    ).values_list("id", "departure_id", "agency_id", "seats", "used", "release_at")
    for allotment_id, departure_id, agency_id, seats, used, release_at in rows:
        if release_at <= now:
            lapsed_unused[departure_id] += seats - used
            continue
        usable.add(allotment_id)
        if agency is not None and agency_id == agency.pk:
            own_unused[departure_id] = seats - used
    return usable, lapsed_unused, own_unused


def _expired_hold_seats(
    departure_ids: list[uuid.UUID], agency: Agency | None, usable_allotments: set[uuid.UUID], now: dt.datetime
) -> tuple[dict[uuid.UUID, int], dict[uuid.UUID, int]]:
    """Seats of active holds past expiry, per departure: (back to general sale, back to ``agency``'s allotment).
    Seats going back to another agency's allotment are in neither. One query."""
    general: dict[uuid.UUID, int] = defaultdict(int)
    own: dict[uuid.UUID, int] = defaultdict(int)
    rows = (
        Hold.objects.filter(departure_id__in=departure_ids, status=Hold.Status.ACTIVE, expires_at__lte=now)
        .values("departure_id", "allotment_id", "allotment__agency_id")
        .annotate(seats=Sum("seats"), from_allotment=Sum("seats_from_allotment"))
        .order_by()
    )
    for row in rows:
        departure_id = row["departure_id"]
        to_allotment = row["from_allotment"] if row["allotment_id"] in usable_allotments else 0
        general[departure_id] += row["seats"] - to_allotment
        if agency is not None and to_allotment and row["allotment__agency_id"] == agency.pk:
            own[departure_id] += to_allotment
    return general, own


def _prices_from(
    rows: list[dict], channel: str, agency: Agency | None, currency: str | None
) -> dict[uuid.UUID, Money]:
    """What one traveller pays from, per departure: one batch call for the whole range."""
    prices = price_from(
        {row["option_id"] for row in rows},
        {row["local_date"] for row in rows},
        channel=channel,
        currency=currency,
        agency=agency,
    )
    found = ((row["id"], prices.get((row["option_id"], row["local_date"]))) for row in rows)
    return {departure_id: price for departure_id, price in found if price is not None}


_ZONES: dict[str, dt.tzinfo] = {}


def _zone(name: str) -> dt.tzinfo:
    zone = _ZONES.get(name)
    if zone is None:
        zone = _ZONES[name] = ZoneInfo(name)
    return zone


# --- JSON bytes for the public hot path ---------------------------------------------------------------------------


def availability_json(
    tour: Tour, items: Iterable[DepartureAvailability], start: dt.date, end: dt.date
) -> bytes:
    body = {
        "tour": tour.slug,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "departures": [item.as_dict() for item in items],
    }
    return json.dumps(body, separators=(",", ":")).encode()
