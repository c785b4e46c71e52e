"""Departures: one-off creation, generation from schedules, capacity edits, status changes and closures."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from core.errors import DomainError
from inventory.models import Allotment, Closure, Departure, Hold, Schedule
from inventory.services import (
    add_closure,
    cancel_departure,
    change_capacity,
    close_departure,
    convert_hold,
    create_allotment,
    create_departure,
    create_schedule,
    extend_schedule,
    generate_departures,
    place_hold,
    reopen_departure,
)
from tenants.context import tenant_context
from tests.catalogue import make_departure, make_option, make_tour
from tests.inventory.conftest import age, seats_of
from tours.models import Tour

pytestmark = pytest.mark.django_db

LISBON = ZoneInfo("Europe/Lisbon")
NEXT_YEAR = timezone.now().year + 1


def departures_of(world, option=None):
    return Departure.objects.filter(option=option or world.option).order_by("starts_at")


# --- one-off ---------------------------------------------------------------------------------------------------


def test_create_departure_converts_local_time_to_utc(world):
    with tenant_context(world.tenant):
        summer = create_departure(world.option, dt.datetime(NEXT_YEAR, 7, 1, 9, 30), 12, cutoff_minutes=30)
    assert summer.starts_at == dt.datetime(NEXT_YEAR, 7, 1, 8, 30, tzinfo=dt.UTC)
    assert summer.local_date == dt.date(NEXT_YEAR, 7, 1)
    assert summer.ends_at - summer.starts_at == dt.timedelta(minutes=world.tour.duration_minutes)
    assert (summer.capacity, summer.cutoff_minutes, summer.held, summer.status) == (12, 30, 0, "open")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((dt.datetime(2001, 1, 1, 9), 10), "starts_local"),
        ((dt.datetime(NEXT_YEAR, 7, 1, 9, tzinfo=dt.UTC), 10), "starts_local"),
        (("tomorrow", 10), "starts_local"),
        ((dt.datetime(NEXT_YEAR, 7, 1, 9), 0), "capacity"),
        ((dt.datetime(NEXT_YEAR, 7, 1, 9), "ten"), "capacity"),
        ((dt.datetime(NEXT_YEAR, 7, 1, 9), 10, -1), "cutoff_minutes"),
    ],
)
def test_create_departure_refuses_bad_input(world, args, field):
    with tenant_context(world.tenant):
        before = Departure.objects.count()
        with pytest.raises(DomainError) as caught:
            create_departure(world.option, *args)
        assert caught.value.code == "invalid_departure"
        assert field in caught.value.fields
        assert Departure.objects.count() == before


def test_create_departure_refuses_a_time_the_clocks_skip(world):
    spring_gap = next(
        day for day in (dt.date(NEXT_YEAR, 3, d) for d in range(25, 32)) if day.weekday() == 6
    )  # last Sunday of March, 01:00 → 02:00
    with tenant_context(world.tenant), pytest.raises(DomainError) as caught:
        create_departure(world.option, dt.datetime.combine(spring_gap, dt.time(1, 30)), 10)
    assert "does not exist" in caught.value.fields["starts_local"]


def test_create_departure_twice_at_the_same_time_is_a_conflict(world):
    with tenant_context(world.tenant):
        create_departure(world.option, dt.datetime(NEXT_YEAR, 7, 1, 9), 10)
        with pytest.raises(DomainError) as caught:
            create_departure(world.option, dt.datetime(NEXT_YEAR, 7, 1, 9), 10)
        assert caught.value.code == "departure_exists"
        assert departures_of(world).filter(local_date=dt.date(NEXT_YEAR, 7, 1)).count() == 1


# --- schedules -------------------------------------------------------------------------------------------------


def schedule_of(world, start, end, weekdays=127, times=(dt.time(9),), capacity=20):
    return create_schedule(world.option, start, end, weekdays, list(times), capacity, cutoff_minutes=45)


def test_generate_expands_weekdays_and_times_and_is_idempotent(world):
    start = timezone.now().date() + dt.timedelta(days=10)
    start += dt.timedelta(days=-start.weekday())  # a Monday
    with tenant_context(world.tenant):
        option = make_option(world.tour, code="sched")
        world.option = option
        schedule = schedule_of(
            world, start, start + dt.timedelta(days=13), weekdays=1 | 4, times=[dt.time(9), dt.time(15)]
        )

        assert generate_departures(schedule) == 8  # 2 weeks × (Monday, Wednesday) × 2 times
        assert generate_departures(schedule) == 0
        made = list(departures_of(world, option))
    assert len(made) == 8
    assert {d.local_date.weekday() for d in made} == {0, 2}
    assert {d.starts_at.astimezone(LISBON).time() for d in made} == {dt.time(9), dt.time(15)}
    assert all((d.capacity, d.cutoff_minutes, d.schedule_id) == (20, 45, schedule.pk) for d in made)


def test_generate_skips_closures_and_leaves_existing_departures_alone(world):
    start = timezone.now().date() + dt.timedelta(days=5)
    with tenant_context(world.tenant):
        option = make_option(world.tour, code="closures")
        world.option = option
        Closure.objects.create(
            tour=world.tour,
            start_date=start + dt.timedelta(days=1),
            end_date=start + dt.timedelta(days=2),
            reason="Festival",
        )
        other = make_option(world.tour, code="other")
        Closure.objects.create(
            tour=world.tour,
            option=other,
            start_date=start,
            end_date=start + dt.timedelta(days=9),
            reason="Other option only",
        )
        existing = create_departure(option, dt.datetime.combine(start + dt.timedelta(days=3), dt.time(9)), 7)
        schedule = schedule_of(world, start, start + dt.timedelta(days=4))

        assert generate_departures(schedule) == 2  # days 0 and 4; 1–2 closed; 3 exists
        dates = list(departures_of(world, option).values_list("local_date", "capacity"))
    assert dates == [(start, 20), (start + dt.timedelta(days=3), 7), (start + dt.timedelta(days=4), 20)]
    assert existing.schedule_id is None


def test_generate_stops_at_the_horizon_and_extend_moves_the_end(world):
    start = timezone.now().date() + dt.timedelta(days=1)
    with tenant_context(world.tenant):
        option = make_option(world.tour, code="horizon")
        world.option = option
        schedule = schedule_of(world, start, start + dt.timedelta(days=400))
        made = generate_departures(schedule)
        assert 180 <= made <= 184
        assert generate_departures(schedule, until=start + dt.timedelta(days=200)) == 200 - made + 1

        short = schedule_of(world, start, start + dt.timedelta(days=2), times=[dt.time(18)])
        assert generate_departures(short) == 3
        assert extend_schedule(short, start + dt.timedelta(days=4)) == 2
        short.refresh_from_db()
        assert short.end_date == start + dt.timedelta(days=4)
        with pytest.raises(DomainError) as caught:
            extend_schedule(short, start)
        assert caught.value.code == "invalid_schedule"


def test_generate_skips_starts_already_past(world):
    now = timezone.now()
    # A tour where it is now the middle of the day, so that two hours before and after fall on the same date.
    zone = next(
        ZoneInfo(name)
        for name in ("Europe/Lisbon", "Asia/Tokyo", "America/New_York")
        if 3 <= now.astimezone(ZoneInfo(name)).hour < 21
    )
    with tenant_context(world.tenant):
        Tour.objects.filter(pk=world.tour.pk).update(time_zone=str(zone))
        world.tour.refresh_from_db()
        option = make_option(world.tour, code="today")
        world.option = option
        earlier = (now - dt.timedelta(hours=2)).astimezone(zone)
        later = (now + dt.timedelta(hours=2)).astimezone(zone)
        assert earlier.date() == later.date()
        schedule = schedule_of(
            world,
            earlier.date(),
            earlier.date(),
            times=[
                earlier.time().replace(second=0, microsecond=0),
                later.time().replace(second=0, microsecond=0),
            ],
        )
        assert generate_departures(schedule) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"capacity": 0}, "capacity"),
        ({"weekdays": 0}, "weekdays"),
        ({"weekdays": 128}, "weekdays"),
        ({"times": []}, "times"),
        ({"end": -1}, "end_date"),
        ({"cutoff_minutes": -5}, "cutoff_minutes"),
    ],
)
def test_create_schedule_refuses_bad_input(world, changes, field):
    start = dt.date(NEXT_YEAR, 1, 10)
    args = {
        "start_date": start,
        "end_date": start + dt.timedelta(days=changes.pop("end", 10)),
        "weekdays": 127,
        "times": [dt.time(9)],
        "capacity": 10,
        "cutoff_minutes": 60,
    }
    args.update(changes)
    with tenant_context(world.tenant):
        with pytest.raises(DomainError) as caught:
            create_schedule(world.option, **args)
        assert field in caught.value.fields
        assert not Schedule.objects.exists()


# --- capacity and status ---------------------------------------------------------------------------------------


def test_change_capacity_refuses_below_allotted_held_and_sold(world):
    with tenant_context(world.tenant):
        create_allotment(world.agency, world.departure, 5, world.departure.starts_at - dt.timedelta(days=2))
        place_hold(world.departure, {"adult": 4}, "retail", "h")
        convert_hold(place_hold(world.departure, {"adult": 3}, "retail", "s"))
        with pytest.raises(DomainError) as caught:
            change_capacity(world.departure, 11)
    assert caught.value.code == "capacity_below_taken"
    assert caught.value.message == "Capacity cannot go below 12: 5 allotted to partners, 4 held, 3 sold."
    assert seats_of(world) == (50, 5, 4, 3)
    with tenant_context(world.tenant):
        assert change_capacity(world.departure, 12).capacity == 12
        for bad in (0, -3, "20", None):
            with pytest.raises(DomainError):
                change_capacity(world.departure, bad)
    assert seats_of(world) == (12, 5, 4, 3)


def test_change_capacity_does_not_count_expired_holds(world):
    with tenant_context(world.tenant):
        stale = place_hold(world.departure, {"adult": 30}, "retail", "stale")
    age(world, stale)
    with tenant_context(world.tenant):
        assert change_capacity(world.departure, 10).capacity == 10
    assert seats_of(world) == (10, 0, 0, 0)


def test_close_reopen_cancel(world):
    with tenant_context(world.tenant):
        assert close_departure(world.departure).status == "closed"
        assert close_departure(world.departure).status == "closed"  # again: no change, no error
        assert reopen_departure(world.departure).status == "open"
        place_hold(world.departure, {"adult": 2}, "retail", "h")
        allotment = create_allotment(
            world.agency, world.departure, 5, world.departure.starts_at - dt.timedelta(days=1)
        )
        cancelled = cancel_departure(world.departure)
        assert cancelled.status == "cancelled"
        assert Hold.objects.get(idempotency_key="h").status == Hold.Status.RELEASED
        allotment.refresh_from_db()
        assert allotment.status == Allotment.Status.RELEASED
        with pytest.raises(DomainError) as caught:
            reopen_departure(world.departure)
        assert caught.value.code == "invalid_status"
        with pytest.raises(DomainError) as caught:
            close_departure(world.departure)
        assert caught.value.code == "invalid_status"
    assert seats_of(world) == (50, 0, 0, 0)


def test_cancel_refuses_a_departure_with_sales(world):
    with tenant_context(world.tenant):
        convert_hold(place_hold(world.departure, {"adult": 2}, "retail", "s"))
        place_hold(world.departure, {"adult": 1}, "retail", "h")
        with pytest.raises(DomainError) as caught:
            cancel_departure(world.departure)
        assert caught.value.code == "departure_has_sales"
        assert "2 seats sold" in caught.value.message
        assert Hold.objects.get(idempotency_key="h").status == Hold.Status.ACTIVE
    assert seats_of(world) == (50, 0, 1, 2)


# --- closures --------------------------------------------------------------------------------------------------


def test_closure_closes_empty_departures_and_reports_the_others(world):
    base = world.departure.starts_at
    with tenant_context(world.tenant):
        empty = world.departure
        busy = make_departure(world.option, starts_at=base + dt.timedelta(days=1))
        stale = make_departure(world.option, starts_at=base + dt.timedelta(days=2))
        outside = make_departure(world.option, starts_at=base + dt.timedelta(days=5))
        place_hold(busy, {"adult": 1}, "retail", "busy")
        old = place_hold(stale, {"adult": 1}, "retail", "stale")
    age(world, old)
    with tenant_context(world.tenant):
        result = add_closure(world.tour, empty.local_date, stale.local_date, "  Road works  ")
        assert result.closure.reason == "Road works"
        assert [d.pk for d in result.closed] == [empty.pk, stale.pk]
        assert [d.pk for d in result.not_closed] == [busy.pk]
        statuses = dict(Departure.objects.values_list("pk", "status"))
    assert statuses == {empty.pk: "closed", busy.pk: "open", stale.pk: "closed", outside.pk: "open"}


def test_closure_of_one_option_leaves_the_others(world):
    with tenant_context(world.tenant):
        other = make_option(world.tour, code="private")
        mine = make_departure(other, starts_at=world.departure.starts_at)
        result = add_closure(world.tour, mine.local_date, mine.local_date, "Vehicle in service", option=other)
        assert [d.pk for d in result.closed] == [mine.pk]
        world.departure.refresh_from_db()
        assert world.departure.status == "open"


def test_closure_refuses_bad_input(world):
    with tenant_context(world.tenant):
        foreign_option = make_option(make_tour(), code="elsewhere")
        day = world.departure.local_date
        for kwargs, field in (
            ({"start_date": day, "end_date": day - dt.timedelta(days=1), "reason": "x"}, "end_date"),
            ({"start_date": day, "end_date": day, "reason": " "}, "reason"),
            ({"start_date": day, "end_date": day, "reason": "x", "option": foreign_option}, "option"),
        ):
            with pytest.raises(DomainError) as caught:
                add_closure(world.tour, **kwargs)
            assert field in caught.value.fields
        assert not Closure.objects.exists()
        assert Departure.objects.get(pk=world.departure.pk).status == "open"


def test_a_hold_left_on_a_cancelled_departure_cannot_be_sold(world):
    with tenant_context(world.tenant):
        placed = place_hold(world.departure, {"adult": 2}, "retail", "h")
        # As when cancel_departure skipped a hold another writer had locked at that moment.
        Departure.objects.filter(pk=world.departure.pk).update(status=Departure.Status.CANCELLED)
        with pytest.raises(DomainError) as caught:
            convert_hold(placed)
        assert caught.value.code == "departure_cancelled"
        assert Hold.objects.get(pk=placed.pk).status == Hold.Status.ACTIVE
    assert seats_of(world) == (50, 0, 2, 0)


def _last_sunday(year: int, month: int) -> dt.date:
    day = dt.date(year, month, 31)
    return day - dt.timedelta(days=(day.weekday() + 1) % 7)


def test_generate_across_daylight_saving_changes(world):
    spring, autumn = _last_sunday(NEXT_YEAR, 3), _last_sunday(NEXT_YEAR, 10)
    with tenant_context(world.tenant):
        option = make_option(world.tour, code="dst")
        world.option = option
        sundays = 64
        schedule = schedule_of(world, spring, autumn, weekdays=sundays, times=[dt.time(1, 30)])
        generate_departures(schedule, until=autumn)
        made = {d.local_date: d.starts_at for d in departures_of(world, option)}
    # Clocks skip 01:00–02:00 in spring: the departure runs at 02:30 summer time, an hour after 01:30 would have.
    assert made[spring] == dt.datetime.combine(spring, dt.time(1, 30), tzinfo=dt.UTC)
    # 01:30 happens twice in autumn: one departure, at the first (still summer time, 00:30 UTC).
    assert made[autumn] == dt.datetime.combine(autumn, dt.time(0, 30), tzinfo=dt.UTC)
    # Every other Sunday between: 01:30 summer time.
    middle = spring + dt.timedelta(days=7)
    assert made[middle] == dt.datetime.combine(middle, dt.time(0, 30), tzinfo=dt.UTC)
    assert len(made) == (autumn - spring).days // 7 + 1
