"""Holds: seats taken for a while (a traveller at checkout, an agent quoting), then sold, released or expired.

A hold is an INSERT of the Hold row plus one conditional UPDATE of the departure row, in the caller's transaction.
The INSERT comes first: the departure row is then locked only from its UPDATE to the commit, and a retried
idempotency key is answered by the unique index (ON CONFLICT DO NOTHING) before any seat moves.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import TypeGuard

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from core.errors import ConflictError, DomainError
from core.ids import uuid7
from core.locking import UPDATE, lock_row, lock_rows
from inventory.cache import bump_availability
from inventory.models import Allotment, Departure, Hold
from inventory.services._seats import (
    ALLOTMENT_TABLE,
    DEPARTURE_TABLE,
    end_holds,
    ending_holds,
    expire_lazily,
    lock_departure,
    lock_ending_holds,
    seat_counts,
)
from inventory.services.allotments import release_lapsed_allotments
from partners.models import Agency
from tours.models import Channel, Option, UnitType

OPTION_TABLE = Option._meta.db_table
UNIT_TYPE_TABLE = UnitType._meta.db_table
HOLD_TABLE = Hold._meta.db_table
_IDEMPOTENCY_KEY_MAX = Hold._meta.get_field("idempotency_key").max_length

DEFAULT_HOLD_TTL_SECONDS: dict[str, int] = {Channel.RETAIL: 900, Channel.TRADE: 3600}
# A hold is a short promise: however often it is extended, it never lives longer than this after it was placed.
DEFAULT_HOLD_MAX_LIFETIME_SECONDS = 4 * 3600
IDEMPOTENCY_CONSTRAINT = "hold_unique_idempotency_key"


def hold_ttl_seconds(channel: str) -> int:
    configured = getattr(settings, "HOLD_TTL_SECONDS", None) or {}
    return int(configured.get(channel, DEFAULT_HOLD_TTL_SECONDS.get(channel, 900)))


def hold_max_lifetime_seconds() -> int:
    return int(getattr(settings, "HOLD_MAX_LIFETIME_SECONDS", DEFAULT_HOLD_MAX_LIFETIME_SECONDS))


@dataclass(frozen=True)
class HoldRequest:
    units: dict[str, int]
    seats: int
    ttl_seconds: int


@dataclass(frozen=True)
class UnitRule:
    code: str
    name: str
    min_per_booking: int
    max_per_booking: int | None
    counts_toward_capacity: bool
    seats_per_unit: int

    def seats_for(self, count: int) -> int:
        return count * self.seats_per_unit if self.counts_toward_capacity else 0


def _booking_rules(option_id: uuid.UUID) -> tuple[dict[str, UnitRule], int, int | None]:
    """The tour's unit types and the option's participant limits, in one query (this is on the hot path)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT u.code, u.name, u.min_per_booking, u.max_per_booking, u.counts_toward_capacity, u.seats_per_unit,
                   o.min_participants, o.max_participants
            FROM {OPTION_TABLE} o LEFT JOIN {UNIT_TYPE_TABLE} u ON u.tour_id = o.tour_id
            WHERE o.id = %s
            """,
            [option_id],
        )
        rows = cursor.fetchall()
    if not rows:
        raise DomainError("This departure's option does not exist.", code="invalid_hold")
    rules = {row[0]: UnitRule(*row[:6]) for row in rows if row[0] is not None}
    return rules, rows[0][6], rows[0][7]


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_hold_request(
    departure: Departure,
    units: dict[str, int],
    channel: str,
    idempotency_key: str,
    agency: Agency | None,
    ttl: int | None,
) -> HoldRequest:
    """Everything about the request that does not depend on the seats left; raises with field errors."""
    fields: dict[str, str] = {}
    if channel not in Channel.values:
        fields["channel"] = f"Unknown channel {channel!r}; one of {', '.join(Channel.values)}."
    elif channel == Channel.TRADE and agency is None:
        fields["agency"] = "Trade holds are placed for a partner agency."
    if not isinstance(idempotency_key, str) or not idempotency_key.strip():
        fields["idempotency_key"] = "An idempotency key is required."
    elif _IDEMPOTENCY_KEY_MAX is not None and len(idempotency_key) > _IDEMPOTENCY_KEY_MAX:
        fields["idempotency_key"] = "At most 100 characters."
    if ttl is not None and (not _is_count(ttl) or not 0 < ttl <= hold_max_lifetime_seconds()):
        fields["ttl"] = f"Seconds between 1 and {hold_max_lifetime_seconds()}."
    if agency is not None:
        status = Agency.objects.filter(pk=agency.pk).values_list("status", flat=True).first()
        if status != Agency.Status.ACTIVE:
            fields["agency"] = f"{agency} cannot book (status: {status or 'unknown'})."

    unit_types, min_participants, max_participants = _booking_rules(departure.option_id)
    counts: dict[str, int] = {}
    if not isinstance(units, dict) or not units:
        fields["units"] = 'Give a count per unit type, e.g. {"adult": 2}.'
    else:
        for code, count in units.items():
            if code not in unit_types:
                fields[f"units.{code}"] = (
                    f"No unit type {code!r} on this tour ({', '.join(sorted(unit_types))})."
                )
            elif not _is_count(count) or count < 0:
                fields[f"units.{code}"] = "A whole number, 0 or more."
            elif count:
                counts[code] = count
        if not any(key.startswith("units") for key in fields) and not counts:
            fields["units"] = "Hold at least one traveller."
    for code, unit in unit_types.items():
        if f"units.{code}" in fields or not counts:
            continue
        count = counts.get(code, 0)
        if count < unit.min_per_booking:
            fields[f"units.{code}"] = f"At least {unit.min_per_booking} {unit.name} per booking."
        elif unit.max_per_booking is not None and count > unit.max_per_booking:
            fields[f"units.{code}"] = f"At most {unit.max_per_booking} {unit.name} per booking."
    if counts and not any(key.startswith("units") for key in fields):
        participants = sum(counts.values())
        if participants < min_participants:
            fields["units"] = f"This option needs at least {min_participants} participants."
        elif max_participants is not None and participants > max_participants:
            fields["units"] = f"This option takes at most {max_participants} participants per booking."
    if fields:
        raise DomainError("The hold request is not valid.", code="invalid_hold", fields=fields)
    seats = sum(unit_types[code].seats_for(count) for code, count in counts.items())
    return HoldRequest(units=counts, seats=seats, ttl_seconds=ttl or hold_ttl_seconds(channel))


def _replay(
    existing: Hold, departure: Departure, request: HoldRequest, channel: str, agency: Agency | None
) -> Hold:
    same = (
        existing.departure_id == departure.id
        and existing.units == request.units
        and existing.channel == channel
        and existing.agency_id == (agency.pk if agency is not None else None)
    )
    if not same:
        raise ConflictError(
            "This idempotency key was already used for a different hold; use a new key for a new hold.",
            code="idempotency_key_reused",
            fields={"idempotency_key": "Already used for a different departure, channel or units."},
        )
    return existing


def _take_from_allotment(departure: Departure, agency: Agency, seats: int) -> tuple[uuid.UUID | None, int]:
    """Take up to ``seats`` from the agency's active allotment on this departure; returns (allotment id, taken)."""
    allotment_id = (
        Allotment.objects.filter(
            agency=agency,
            departure_id=departure.id,
            status=Allotment.Status.ACTIVE,
            release_at__gt=timezone.now(),  # a lapsed block is general sale now, even before the beat task runs
        )
        .values_list("id", flat=True)
        .first()
    )
    if allotment_id is None or seats == 0:
        return None, 0
    lock_departure(departure.id)
    # The share taken is computed from the block's row as it is now, locked, not from an earlier read.
    block = lock_rows(Allotment.objects.filter(pk=allotment_id, status=Allotment.Status.ACTIVE))
    take = min(seats, block[0].seats - block[0].used) if block else 0
    if take <= 0:
        return None, 0
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {ALLOTMENT_TABLE} SET used = used + %s WHERE id = %s", [take, allotment_id])
    return allotment_id, take


def _give_back_to_allotment(allotment_id: uuid.UUID | None, seats: int) -> None:
    if allotment_id and seats:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {ALLOTMENT_TABLE} SET used = used - %s WHERE id = %s", [seats, allotment_id]
            )


def _not_enough_seats(
    departure_id: uuid.UUID, wanted: int, from_allotment: int, now: dt.datetime
) -> DomainError:
    fresh = seat_counts(departure_id)
    if fresh.status != Departure.Status.OPEN:
        return ConflictError(
            f"{fresh} is {fresh.get_status_display().lower()}; it takes no holds.", code="departure_not_open"
        )
    if fresh.starts_at - dt.timedelta(minutes=fresh.cutoff_minutes) <= now:
        return ConflictError(
            f"Sales for {fresh} closed {fresh.cutoff_minutes} minutes before the start.", code="sales_closed"
        )
    left = max(fresh.free, 0) + from_allotment
    seats_word = "seat" if left == 1 else "seats"
    return ConflictError(
        f"Only {left} {seats_word} left on {fresh}; {wanted} asked for.",
        code="not_enough_seats",
        fields={"units": f"Only {left} {seats_word} left."},
    )


def _insert_hold(hold: Hold) -> bool:
    """INSERT unless the idempotency key exists (then False). A concurrent insert of the same key makes this wait
    for that transaction: committed, this one does nothing; rolled back, this one inserts."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {HOLD_TABLE} (tenant_id, id, departure_id, channel, agency_id, allotment_id, units, seats,
                                      seats_from_allotment, idempotency_key, status, expires_at, created_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT ON CONSTRAINT {IDEMPOTENCY_CONSTRAINT} DO NOTHING
            RETURNING 1
            """,
            [
                hold.tenant_id,
                hold.id,
                hold.departure_id,
                hold.channel,
                hold.agency_id,
                hold.allotment_id,
                # psycopg adapts Jsonb; django-stubs types cursor parameters as builtin values only.
                Jsonb(hold.units),  # type: ignore[list-item]
                hold.seats,
                hold.seats_from_allotment,
                hold.idempotency_key,
                hold.status,
                hold.expires_at,
                hold.created_at,
            ],
        )
        inserted = cursor.fetchone() is not None
    if inserted:
        hold._state.adding = False
        hold._state.db = connection.alias
    return inserted


def _record_allotment_use(hold: Hold, allotment_id: uuid.UUID, seats: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {HOLD_TABLE} SET allotment_id = %s, seats_from_allotment = %s WHERE id = %s",
            [allotment_id, seats, hold.id],
        )
    hold.allotment_id, hold.seats_from_allotment = allotment_id, seats


def _take_general_sale(departure: Departure, seats: int, from_allotment: int, now: dt.datetime) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {DEPARTURE_TABLE}
            SET allotted = allotted - %(k)s, held = held + %(n)s
            WHERE id = %(id)s AND status = 'open'
              AND starts_at - cutoff_minutes * interval '1 minute' > %(now)s
              AND capacity - allotted - held - sold >= %(n)s - %(k)s AND allotted >= %(k)s
            """,
            {"id": departure.id, "n": seats, "k": from_allotment, "now": now},
        )
        return cursor.rowcount == 1


def place_hold(
    departure: Departure,
    units: dict[str, int],
    channel: str,
    idempotency_key: str,
    agency: Agency | None = None,
    ttl: int | None = None,
) -> Hold:
    """Hold seats on ``departure`` for ``units`` (unit type code → count) until the hold expires.

    Seats come from the agency's allotment on the departure first, then from general sale. The same
    ``idempotency_key`` returns the same hold; used for a different request it is refused (409). A refusal
    leaves nothing behind (only holds that had expired anyway may have been released)."""
    request = validate_hold_request(departure, units, channel, idempotency_key, agency, ttl)
    now = timezone.now()
    # No savepoint: it costs two round trips on the hottest write there is. The INSERT cannot fail (ON CONFLICT),
    # and the one refusal after it undoes its own steps below; anything unexpected dooms the whole transaction.
    try:
        hold = Hold(
            id=uuid7(),
            tenant_id=departure.tenant_id,
            departure_id=departure.id,
            channel=channel,
            agency=agency,
            allotment_id=None,
            units=request.units,
            seats=request.seats,
            seats_from_allotment=0,
            idempotency_key=idempotency_key,
            status=Hold.Status.ACTIVE,
            expires_at=now + dt.timedelta(seconds=request.ttl_seconds),
            created_at=now,
        )
        # The idempotency key is claimed first, on every path: two requests with one key then queue on the key
        # alone, before either locks an allotment or the departure (the other order deadlocked).
        if not _insert_hold(hold):
            return _replay(
                Hold.objects.get(idempotency_key=idempotency_key), departure, request, channel, agency
            )
        expire_lazily(departure, now)
        allotment_id, from_allotment = (None, 0)
        if agency is not None:
            allotment_id, from_allotment = _take_from_allotment(departure, agency, request.seats)
            if allotment_id is not None and from_allotment:
                _record_allotment_use(hold, allotment_id, from_allotment)
        taken = _take_general_sale(departure, request.seats, from_allotment, now)
        if not taken and release_lapsed_allotments(departure.id, now):
            # Seats of allotments past their release time are free to everyone (availability shows them so);
            # the beat task may not have released them yet. Only the refusal path pays for this check.
            taken = _take_general_sale(departure, request.seats, from_allotment, now)
        if not taken:
            refusal = _not_enough_seats(departure.id, request.seats, from_allotment, now)
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {HOLD_TABLE} WHERE id = %s", [hold.id])
            _give_back_to_allotment(allotment_id, from_allotment)
            raise refusal
    except DomainError:
        raise
    except Exception:
        if connection.in_atomic_block:
            transaction.set_rollback(True)
        raise
    bump_availability(departure.tenant_id, departure.tour_id)
    return hold


def _hold_state_error(hold: Hold, now: dt.datetime, action: str) -> DomainError:
    if hold.status == Hold.Status.EXPIRED or (hold.status == Hold.Status.ACTIVE and hold.expires_at <= now):
        return ConflictError(
            f"This hold expired at {hold.expires_at:%Y-%m-%d %H:%M:%S} UTC; it can no longer be {action}. "
            "Place a new hold.",
            code="hold_expired",
        )
    return ConflictError(
        f"This hold is {hold.get_status_display().lower()}; only an active hold can be {action}.",
        code="hold_not_active",
    )


def _locked(hold: Hold) -> Hold:
    return lock_row(Hold.objects.select_related("departure"), pk=hold.pk)


def release_hold(hold: Hold) -> Hold:
    """Give the seats back now. Releasing a hold that already ended (released or expired) changes nothing."""
    now = timezone.now()
    with transaction.atomic():
        current = _locked(hold)
        if current.status in (Hold.Status.RELEASED, Hold.Status.EXPIRED):
            return current
        if current.status != Hold.Status.ACTIVE:
            raise ConflictError("These seats are sold; cancel the booking instead.", code="hold_converted")
        departure = current.departure
        end_holds(
            ending_holds(Hold.objects.filter(pk=current.pk)),
            Hold.Status.RELEASED,
            now,
            departure.tenant_id,
            {departure.id: departure.tour_id},
        )
        current.refresh_from_db()
        return current


def extend_hold(hold: Hold, seconds: int) -> Hold:
    """Push the expiry of an active, unexpired hold ``seconds`` further, up to its maximum lifetime."""
    if not _is_count(seconds) or seconds <= 0:
        raise DomainError(
            "Extend by a positive number of seconds.",
            code="invalid_extension",
            fields={"seconds": "A whole number above 0."},
        )
    now = timezone.now()
    with transaction.atomic():
        current = _locked(hold)
        if current.status != Hold.Status.ACTIVE or current.expires_at <= now:
            raise _hold_state_error(current, now, "extended")
        latest = current.created_at + dt.timedelta(seconds=hold_max_lifetime_seconds())
        new_expiry = current.expires_at + dt.timedelta(seconds=seconds)
        if new_expiry > latest:
            raise DomainError(
                f"A hold cannot be kept past {latest:%Y-%m-%d %H:%M:%S} UTC "
                f"({hold_max_lifetime_seconds() // 60} minutes after it was placed).",
                code="hold_extension_too_long",
                fields={"seconds": f"At most {max(int((latest - current.expires_at).total_seconds()), 0)}."},
            )
        current.expires_at = new_expiry
        current.save(update_fields=["expires_at"])
        return current


def convert_hold(hold: Hold) -> Hold:
    """The held seats become sold (a booking was confirmed). An expired or ended hold is refused."""
    now = timezone.now()
    with transaction.atomic():
        current = _locked(hold)
        if current.status != Hold.Status.ACTIVE or current.expires_at <= now:
            raise _hold_state_error(current, now, "converted")
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {DEPARTURE_TABLE} SET held = held - %(n)s, sold = sold + %(n)s "
                "WHERE id = %(id)s AND status <> 'cancelled'",
                {"n": current.seats, "id": current.departure_id},
            )
            if cursor.rowcount != 1:
                raise ConflictError(
                    f"{current.departure} was cancelled; this hold cannot be sold.",
                    code="departure_cancelled",
                )
        current.status = Hold.Status.CONVERTED
        current.ended_at = now
        current.save(update_fields=["status", "ended_at"])
        bump_availability(current.tenant_id, current.departure.tour_id)
        return current


def expire_holds(now: dt.datetime | None = None, limit: int = 500) -> int:
    """Release one batch of expired active holds (the beat sweep); returns how many. Rows other writers hold are
    skipped: they are ending already, or the next sweep takes them."""
    now = now or timezone.now()
    with transaction.atomic():
        batch = lock_ending_holds(
            Hold.objects.filter(status=Hold.Status.ACTIVE, expires_at__lte=now).order_by("expires_at")[
                :limit
            ],
            skip_locked=True,
            strength=UPDATE,
        )
        if not batch:
            return 0
        rows = list(
            Departure.objects.filter(id__in={hold.departure_id for hold in batch}).values_list(
                "id", "tenant_id", "tour_id"
            )
        )
        tenant_of = {departure_id: tenant_id for departure_id, tenant_id, _ in rows}
        tours = {departure_id: tour_id for departure_id, _, tour_id in rows}
        ended = 0
        for tenant_id in set(tenant_of.values()):
            ended += end_holds(
                [hold for hold in batch if tenant_of[hold.departure_id] == tenant_id],
                Hold.Status.EXPIRED,
                now,
                tenant_id,
                tours,
            )
        return ended


def release_sold_hold(hold: Hold) -> Hold:
    """A confirmed booking was cancelled: its sold seats go back on sale — into the agency's allotment while that
    is still active, otherwise to general sale."""
    now = timezone.now()
    with transaction.atomic():
        current = _locked(hold)
        if current.status != Hold.Status.CONVERTED:
            raise ConflictError(
                f"Only sold seats can be given back; this hold is {current.get_status_display().lower()}.",
                code="hold_not_sold",
            )
        lock_departure(current.departure_id)
        back_to_block = 0
        with connection.cursor() as cursor:
            if current.allotment_id and current.seats_from_allotment:
                cursor.execute(
                    f"UPDATE {ALLOTMENT_TABLE} SET used = used - %s WHERE id = %s AND status = 'active' "
                    "AND used >= %s",
                    [current.seats_from_allotment, current.allotment_id, current.seats_from_allotment],
                )
                back_to_block = current.seats_from_allotment if cursor.rowcount == 1 else 0
            cursor.execute(
                f"UPDATE {DEPARTURE_TABLE} SET sold = sold - %(n)s, allotted = allotted + %(k)s "
                "WHERE id = %(id)s AND sold >= %(n)s",
                {"n": current.seats, "k": back_to_block, "id": current.departure_id},
            )
            if cursor.rowcount != 1:  # the counters disagree with the hold rows: refuse rather than guess
                raise ConflictError(
                    "The departure's sold seats do not cover this hold.", code="seat_counts_mismatch"
                )
        current.status = Hold.Status.RELEASED
        current.ended_at = now
        current.save(update_fields=["status", "ended_at"])
    bump_availability(current.tenant_id, current.departure.tour_id)
    return current
