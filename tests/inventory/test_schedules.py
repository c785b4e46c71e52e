"""Recurrence expansion in the tour's time zone, across daylight-saving transitions (no database)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from inventory.schedules import is_nonexistent, local_to_utc, occurrences

LISBON = ZoneInfo("Europe/Lisbon")  # 2026: forward 29 March 01:00 → 02:00, back 25 October 02:00 → 01:00
UTC = dt.UTC


def test_weekday_mask_and_times_in_order():
    mondays_and_fridays = 1 | 16
    found = list(
        occurrences(
            dt.date(2026, 6, 1), dt.date(2026, 6, 14), mondays_and_fridays, [dt.time(14), dt.time(9)], LISBON
        )
    )
    assert [(o.local_date.isoformat(), o.starts_at.hour) for o in found] == [
        ("2026-06-01", 8),
        ("2026-06-01", 13),
        ("2026-06-05", 8),
        ("2026-06-05", 13),
        ("2026-06-08", 8),
        ("2026-06-08", 13),
        ("2026-06-12", 8),
        ("2026-06-12", 13),
    ]


def test_offsets_follow_the_season():
    winter, summer = (
        next(occurrences(day, day, 127, [dt.time(10)], LISBON)).starts_at
        for day in (dt.date(2026, 1, 15), dt.date(2026, 7, 15))
    )
    assert winter == dt.datetime(2026, 1, 15, 10, tzinfo=UTC)
    assert summer == dt.datetime(2026, 7, 15, 9, tzinfo=UTC)


def test_time_in_the_spring_gap_moves_forward_by_the_jump():
    local = dt.datetime(2026, 3, 29, 1, 30)
    assert is_nonexistent(local, LISBON)
    starts_at = local_to_utc(local, LISBON)
    assert starts_at == dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert starts_at.astimezone(LISBON).strftime("%H:%M") == "02:30"


def test_repeated_autumn_time_is_one_departure_at_the_first_occurrence():
    found = list(occurrences(dt.date(2026, 10, 25), dt.date(2026, 10, 25), 127, [dt.time(1, 30)], LISBON))
    assert len(found) == 1
    assert found[0].starts_at == dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # still summer time (+01:00)
    assert not is_nonexistent(dt.datetime(2026, 10, 25, 1, 30), LISBON)


def test_two_times_that_land_on_one_instant_in_a_gap_make_one_departure():
    # 01:00 does not exist and moves to 02:00, which is also asked for.
    found = list(
        occurrences(dt.date(2026, 3, 29), dt.date(2026, 3, 29), 127, [dt.time(1), dt.time(2)], LISBON)
    )
    assert [o.starts_at for o in found] == [dt.datetime(2026, 3, 29, 1, tzinfo=UTC)]
