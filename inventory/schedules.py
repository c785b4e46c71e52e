"""Recurrence expansion: the start instants of a schedule (weekdays × local times between two dates).

Pure functions, no database: the times are wall-clock times in the tour's IANA time zone, turned into UTC here.
Daylight-saving transitions: a time that does not exist (the clocks jump over it) moves forward by the jump, as a
traveller's watch would read it; a time that happens twice (the clocks go back) is the first of the two, so one
departure, not two.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

WEEKDAY_BITS = {day: 1 << day for day in range(7)}  # Monday = 1 … Sunday = 64, as Schedule.weekdays


@dataclass(frozen=True)
class Occurrence:
    local_date: dt.date
    starts_at: dt.datetime  # UTC


def local_to_utc(local: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """A naive wall-clock time in ``zone`` → the UTC instant (gap: shifted forward; fold: first occurrence)."""
    # PEP 495: fold=0 reads a local time with the offset in force before a transition. For a time in a gap that
    # is the instant the clocks show the same time shifted forward by the jump; for a repeated time, the first one.
    return local.replace(tzinfo=zone, fold=0).astimezone(dt.UTC)


def is_nonexistent(local: dt.datetime, zone: ZoneInfo) -> bool:
    return local.replace(tzinfo=zone).astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) != local


def occurrences(
    start_date: dt.date,
    end_date: dt.date,
    weekdays: int,
    times: Iterable[dt.time],
    zone: ZoneInfo,
) -> Iterator[Occurrence]:
    """Every (date, time) of the recurrence between the dates, inclusive, in order."""
    times = sorted(set(times))
    day = start_date
    while day <= end_date:
        if weekdays & WEEKDAY_BITS[day.weekday()]:
            seen: set[dt.datetime] = set()
            for time in times:
                starts_at = local_to_utc(dt.datetime.combine(day, time), zone)
                if starts_at not in seen:  # two times can land on one instant across a gap
                    seen.add(starts_at)
                    yield Occurrence(local_date=day, starts_at=starts_at)
        day += dt.timedelta(days=1)
