"""Availability selector: statuses and their boundaries, seats per channel/agency with lazy expiry and lapsed
allotments, query counts, validation, and the versioned cache."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db.models import F
from django.utils import timezone

from core.errors import DomainError
from core.money import Money
from inventory.availability import Status, availability, compute_availability
from inventory.cache import bump_availability
from inventory.models import Allotment, Departure, Hold
from tenants.context import tenant_context
from tenants.models import Tenant
from tests.catalogue import (
    make_agency,
    make_contract,
    make_departure,
    make_option,
    make_price_list,
    make_tour,
    make_unit_types,
)
from tests.factories import make_tenant

START = dt.date(2030, 3, 1)
END = dt.date(2030, 3, 31)


def at(day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(2030, 3, day, hour, tzinfo=dt.UTC)


@pytest.fixture
def tenant(db):
    return make_tenant()


@pytest.fixture
def tour(tenant):
    with tenant_context(tenant):
        return make_tour()


@pytest.fixture
def option(tenant, tour):
    with tenant_context(tenant):
        return make_option(tour)


def set_seats(departure: Departure, **values: int) -> None:
    Departure.objects.filter(pk=departure.pk).update(**values)


def hold(
    departure: Departure, seats: int, *, expired: bool, allotment: Allotment | None = None, from_allotment=0
):
    return Hold.objects.create(
        departure=departure,
        channel="trade" if allotment else "retail",
        agency=allotment.agency if allotment else None,
        allotment=allotment,
        units={"adult": seats},
        seats=seats,
        seats_from_allotment=from_allotment,
        idempotency_key=str(uuid.uuid4()),
        expires_at=timezone.now() + (dt.timedelta(minutes=-1) if expired else dt.timedelta(minutes=15)),
    )


def by_day(items) -> dict[int, object]:
    return {item.local_date.day: item for item in items}


def test_status_boundaries_and_what_is_listed(tenant, tour, option):
    with tenant_context(tenant):
        other_option = make_option(tour, code="private")
        make_departure(option, capacity=10, starts_at=at(2))  # 10 left
        d3 = make_departure(option, capacity=10, starts_at=at(3))
        set_seats(d3, sold=5)  # exactly 50 % left: not yet limited
        d4 = make_departure(option, capacity=10, starts_at=at(4))
        set_seats(d4, sold=6)  # 40 % left
        d5 = make_departure(option, capacity=10, starts_at=at(5))
        set_seats(d5, sold=7, held=3)
        make_departure(option, capacity=10, starts_at=at(6), status=Departure.Status.CLOSED)
        make_departure(option, capacity=10, starts_at=at(7), status=Departure.Status.CANCELLED)
        make_departure(
            option, capacity=10, starts_at=at(8, 23)
        )  # 23:00 UTC = local 23:00 in Lisbon, still the 8th
        make_departure(
            option, capacity=10, starts_at=dt.datetime(2030, 4, 1, 9, tzinfo=dt.UTC)
        )  # out of range
        make_departure(other_option, capacity=4, starts_at=at(9))

        items = availability(tour, START, END, "retail")
        days = by_day(items)
        assert sorted(days) == [2, 3, 4, 5, 6, 8, 9]
        assert [item.starts_at for item in items] == sorted(item.starts_at for item in items)
        assert (days[2].status, days[2].seats_left) == (Status.AVAILABLE, 10)
        assert (days[3].status, days[3].seats_left) == (Status.AVAILABLE, 5)
        assert (days[4].status, days[4].seats_left) == (Status.LIMITED, 4)
        assert (days[5].status, days[5].seats_left) == (Status.SOLD_OUT, 0)
        assert (days[6].status, days[6].seats_left) == (Status.CLOSED, 0)
        assert days[8].local_time == dt.time(23, 0)
        assert days[9].option_id == other_option.pk

        only_shared = availability(tour, START, END, "retail", option=option)
        assert {item.option_id for item in only_shared} == {option.pk}


def test_limited_threshold_is_the_tenants(tenant, tour, option):
    with tenant_context(tenant):
        departure = make_departure(option, capacity=10, starts_at=at(3))
        set_seats(departure, sold=3)
        [item] = compute_availability(tour, START, END, "retail")
        assert item.status == Status.AVAILABLE  # 70 % left, default threshold 50 %
        Tenant.objects.filter(pk=tenant.pk).update(availability_limited_percent=80)
        [item] = compute_availability(tour, START, END, "retail")
        assert item.status == Status.LIMITED


def test_past_departures_and_cut_off_are_closed(tenant, tour, option):
    now = timezone.now().replace(microsecond=0)
    with tenant_context(tenant):
        make_departure(option, capacity=10, starts_at=now - dt.timedelta(hours=2))
        make_departure(option, capacity=10, starts_at=now + dt.timedelta(minutes=30), cutoff_minutes=60)
        make_departure(option, capacity=10, starts_at=now + dt.timedelta(minutes=90), cutoff_minutes=60)
        today = timezone.localdate(now, timezone=dt.UTC)
        items = compute_availability(
            tour, today - dt.timedelta(days=1), today + dt.timedelta(days=1), "retail"
        )
        assert [item.status for item in items] == [Status.CLOSED, Status.CLOSED, Status.AVAILABLE]
        assert [item.seats_left for item in items] == [0, 0, 10]


def test_lazily_expired_holds_count_as_free(tenant, tour, option):
    with tenant_context(tenant):
        departure = make_departure(option, capacity=10, starts_at=at(3))
        hold(departure, 4, expired=True)
        hold(departure, 2, expired=False)
        set_seats(departure, held=6)
        [item] = compute_availability(tour, START, END, "retail")
        assert item.seats_left == 10 - 2


def test_allotment_seats_belong_to_their_agency_only(tenant, tour, option):
    with tenant_context(tenant):
        mine, theirs = make_agency(), make_agency()
        departure = make_departure(option, capacity=20, starts_at=at(3))
        future = timezone.now() + dt.timedelta(days=30)
        my_block = Allotment.objects.create(
            agency=mine, departure=departure, seats=5, used=3, release_at=future
        )
        their_block = Allotment.objects.create(
            agency=theirs, departure=departure, seats=4, used=2, release_at=future
        )
        # Mine: 3 used = one expired hold of 2 (from my block) + a live one of 1; theirs: an expired hold of 2.
        hold(departure, 3, expired=True, allotment=my_block, from_allotment=2)  # 1 seat was general sale
        hold(departure, 1, expired=False, allotment=my_block, from_allotment=1)
        hold(departure, 2, expired=True, allotment=their_block, from_allotment=2)
        set_seats(departure, allotted=(5 - 3) + (4 - 2), held=3 + 1 + 2)
        # free for general sale on the row: 20 - 4 allotted - 6 held = 10; +1 expired general seat.
        [retail] = compute_availability(tour, START, END, "retail")
        assert retail.seats_left == 11
        [trade] = compute_availability(tour, START, END, "trade")
        assert trade.seats_left == 11
        [own] = compute_availability(tour, START, END, "trade", agency=mine)
        assert own.seats_left == 11 + 2 + 2  # + my unused block + my expired block seats
        [other] = compute_availability(tour, START, END, "trade", agency=theirs)
        assert other.seats_left == 11 + 2 + 2


def test_a_lapsed_allotment_is_general_sale(tenant, tour, option):
    with tenant_context(tenant):
        agency = make_agency()
        departure = make_departure(option, capacity=10, starts_at=at(3))
        block = Allotment.objects.create(
            agency=agency,
            departure=departure,
            seats=4,
            used=1,
            release_at=timezone.now() - dt.timedelta(minutes=1),
        )
        hold(departure, 1, expired=True, allotment=block, from_allotment=1)
        set_seats(departure, allotted=3, held=1)
        [retail] = compute_availability(tour, START, END, "retail")
        assert retail.seats_left == 10
        [own] = compute_availability(tour, START, END, "trade", agency=agency)
        assert own.seats_left == 10  # nothing extra: the block lapsed and is everybody's now


def test_a_month_takes_a_few_queries_and_a_cached_answer_none(
    tenant, tour, option, django_assert_num_queries, django_assert_max_num_queries
):
    with tenant_context(tenant):
        agency = make_agency()
        make_contract(agency)
        units = make_unit_types(tour)
        make_price_list(option, units, {"adult": 4500, "child": 2500}, channel="trade", currency="EUR")
        for day in range(1, 32):
            departure = make_departure(option, capacity=30, starts_at=at(day))
            Allotment.objects.create(
                agency=agency, departure=departure, seats=2, release_at=timezone.now() + dt.timedelta(days=9)
            )
            hold(departure, 1, expired=day % 2 == 0)
            set_seats(departure, allotted=2, held=1)
        # departures, expired holds, allotments + the batch price_from (at most 4 by its contract)
        with django_assert_max_num_queries(7):
            items = availability(tour, START, END, "trade", agency=agency)
        assert len(items) == 31
        assert {item.price_from for item in items} == {Money(4500, "EUR")}
        assert {item.seats_left for item in items} == {30 - 2 - 1 + 2, 30 - 2 - 1 + 1 + 2}
        with django_assert_num_queries(0):
            assert availability(tour, START, END, "trade", agency=agency) == items


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        ((END, START, "retail"), {}, "to"),
        ((START, START + dt.timedelta(days=120), "retail"), {}, "to"),
        ((START, END, "wholesale"), {}, "channel"),
        (("2030-03-01", END, "retail"), {}, "from"),
    ],
)
def test_bad_requests_are_refused_with_field_errors(tenant, tour, args, kwargs, field):
    with tenant_context(tenant), pytest.raises(DomainError) as error:
        availability(tour, *args, **kwargs)
    assert error.value.code == "invalid_availability_request"
    assert field in error.value.fields


def test_agency_on_retail_and_a_foreign_option_are_refused(tenant, tour):
    with tenant_context(tenant):
        agency = make_agency()
        foreign = make_option(make_tour())
        with pytest.raises(DomainError) as error:
            availability(tour, START, END, "retail", agency=agency, option=foreign)
    assert set(error.value.fields) == {"agency", "option"}


@pytest.mark.django_db(transaction=True)
def test_every_seat_movement_invalidates_the_cached_answer():
    tenant = make_tenant()
    with tenant_context(tenant):
        tour = make_tour()
        departure = make_departure(make_option(tour), capacity=10, starts_at=at(3))
    read = lambda: availability(tour, START, END, "retail")[0].seats_left  # noqa: E731

    with tenant_context(tenant):
        assert read() == 10
    movements = [
        ({"held": F("held") + 2}, 8),  # a hold
        ({"held": F("held") - 2, "sold": F("sold") + 2}, 8),  # converted to a sale
        ({"allotted": F("allotted") + 3}, 5),  # an allotment
        ({"sold": F("sold") - 1}, 6),  # a cancellation
        ({"held": F("held") + 6}, 0),  # the last seats
    ]
    previous = 10
    for change, seats in movements:
        with tenant_context(tenant):
            Departure.objects.filter(pk=departure.pk).update(**change)
            bump_availability(tenant.pk, tour.pk)
            assert read() == previous  # the bump waits for the commit: inside, the old key still answers
        with tenant_context(tenant):
            assert read() == seats
        previous = seats

    # Without a bump the cached answer stands (the TTL bounds it): proof the reads above were cache-backed.
    with tenant_context(tenant):
        Departure.objects.filter(pk=departure.pk).update(held=F("held") - 6)
    with tenant_context(tenant):
        assert read() == 0
        assert compute_availability(tour, START, END, "retail")[0].seats_left == 6
