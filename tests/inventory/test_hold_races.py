"""Holds under real concurrency: threads with their own connections racing for the same departure row.

The promise under test: a seat is never held or sold twice, the counters always agree with the hold rows, and a
loser gets a clear DomainError, never an IntegrityError or a deadlock."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from inventory.models import Hold
from inventory.services import (
    cancel_departure,
    change_capacity,
    convert_hold,
    create_allotment,
    expire_holds,
    place_hold,
    release_allotment,
)
from tenants.context import tenant_context
from tests.inventory.conftest import age, build_world
from tests.inventory.seats import assert_consistent, kinds
from tests.races import THREADS, attempt, run_together, unexpected

pytestmark = pytest.mark.django_db(transaction=True)


def spread(total: int, threads: int = THREADS) -> list[int]:
    """``total`` attempts over the threads, as evenly as possible."""
    return [total // threads + (1 if index < total % threads else 0) for index in range(threads)]


def test_200_one_seat_holds_on_50_seats_exactly_50_succeed():
    world = build_world(capacity=50)
    share = spread(200)

    def work(index):
        return [
            attempt(
                world.tenant, lambda n=n: place_hold(world.departure, {"adult": 1}, "retail", f"h{index}-{n}")
            )
            for n in range(share[index])
        ]

    outcomes = run_together(work)

    assert not unexpected(outcomes), unexpected(outcomes)[:3]
    assert kinds(outcomes) == {"hold": 50, "not_enough_seats": 150}
    fresh = assert_consistent(world.tenant, world.departure)
    assert fresh.held == 50
    with tenant_context(world.tenant):
        assert Hold.objects.filter(status=Hold.Status.ACTIVE).count() == 50


def test_mixed_sizes_never_exceed_capacity():
    world = build_world(capacity=50)
    sizes = random.Random(5).choices([1, 2, 3, 4], k=THREADS * 4)

    def work(index):
        mine = sizes[index * 4 : index * 4 + 4]
        return [
            attempt(
                world.tenant,
                lambda n=n, s=s: place_hold(world.departure, {"adult": s}, "retail", f"m{index}-{n}"),
            )
            for n, s in enumerate(mine)
        ]

    outcomes = run_together(work)

    assert not unexpected(outcomes), unexpected(outcomes)[:3]
    counted = kinds(outcomes)
    assert set(counted) == {"hold", "not_enough_seats"}
    fresh = assert_consistent(world.tenant, world.departure)
    assert sum(outcome.seats for outcome in outcomes if isinstance(outcome, Hold)) == fresh.held
    # Seats only went down, so the smallest refused request did not fit at the end either.
    smallest_refused = min(
        s for s, outcome in zip(sizes, outcomes, strict=True) if outcome == "not_enough_seats"
    )
    assert 50 - smallest_refused < fresh.held <= 50


def test_holds_racing_a_capacity_reduction():
    world = build_world(capacity=50)
    rng = random.Random(7)
    targets = [rng.randint(5, 50) for _ in range(8 * 3)]

    def work(index):
        if index < 8:  # staff editing the capacity while travellers book
            return [
                attempt(world.tenant, lambda c=c: change_capacity(world.departure, c))
                for c in targets[index * 3 : index * 3 + 3]
            ]
        return [
            attempt(
                world.tenant, lambda n=n: place_hold(world.departure, {"adult": 1}, "retail", f"c{index}-{n}")
            )
            for n in range(3)
        ]

    outcomes = run_together(work)

    assert not unexpected(outcomes), unexpected(outcomes)[:3]
    assert set(kinds(outcomes)) <= {"hold", "not_enough_seats", "Departure", "capacity_below_taken"}
    fresh = assert_consistent(world.tenant, world.departure)
    assert fresh.held == sum(1 for outcome in outcomes if isinstance(outcome, Hold))
    assert fresh.capacity in [*targets, 50]


def test_same_idempotency_key_racing_itself_makes_one_hold():
    world = build_world(capacity=50)

    def work(index):
        units = {"adult": 2} if index % 2 else {"adult": 3}
        return [attempt(world.tenant, lambda: place_hold(world.departure, units, "retail", "same-key"))]

    outcomes = run_together(work)

    assert not unexpected(outcomes), unexpected(outcomes)[:3]
    holds = [outcome for outcome in outcomes if isinstance(outcome, Hold)]
    assert len({hold.pk for hold in holds}) == 1
    winner = holds[0]
    # Every request like the winner's got the winner's hold back; every other one was told the key is taken.
    assert len(holds) == THREADS // 2
    assert kinds(outcomes)["idempotency_key_reused"] == THREADS // 2
    with tenant_context(world.tenant):
        assert Hold.objects.count() == 1
    assert assert_consistent(world.tenant, world.departure).held == winner.seats


def test_allotment_consumption_racing_general_sale():
    world = build_world(capacity=50)
    with tenant_context(world.tenant):
        allotment = create_allotment(
            world.agency, world.departure, 10, world.departure.starts_at - dt.timedelta(days=3)
        )

    def work(index):
        trade = index % 2 == 0
        return [
            attempt(
                world.tenant,
                lambda n=n: place_hold(
                    world.departure,
                    {"adult": 1},
                    "trade" if trade else "retail",
                    f"a{index}-{n}",
                    agency=world.agency if trade else None,
                ),
            )
            for n in range(3)
        ]

    outcomes = run_together(work)

    assert not unexpected(outcomes), unexpected(outcomes)[:3]
    holds = [outcome for outcome in outcomes if isinstance(outcome, Hold)]
    assert len(holds) == 50  # 96 one-seat requests for 50 seats
    retail = [hold for hold in holds if hold.channel == "retail"]
    trade = [hold for hold in holds if hold.channel == "trade"]
    assert len(retail) <= 40  # the allotted 10 were never sold to retail
    assert sum(hold.seats_from_allotment for hold in trade) == 10
    fresh = assert_consistent(world.tenant, world.departure)
    assert (fresh.allotted, fresh.held) == (0, 50)
    with tenant_context(world.tenant):
        allotment.refresh_from_db()
    assert allotment.used == 10


def test_allotment_release_racing_trade_holds_and_expiry():
    world = build_world(capacity=60)
    with tenant_context(world.tenant):
        allotment = create_allotment(
            world.agency, world.departure, 30, world.departure.starts_at - dt.timedelta(days=3)
        )
        old = [
            place_hold(world.departure, {"adult": 1}, "trade", f"old{n}", agency=world.agency)
            for n in range(10)
        ]
    for hold in old:
        age(world, hold)

    def work(index):
        if index == 0:
            return [attempt(world.tenant, lambda: release_allotment(allotment))]
        if index in (1, 2):
            return [attempt(world.tenant, expire_holds)]
        return [
            attempt(
                world.tenant,
                lambda n=n: place_hold(
                    world.departure, {"adult": 1}, "trade", f"t{index}-{n}", agency=world.agency
                ),
            )
            for n in range(2)
        ]

    outcomes = run_together(work)

    assert not unexpected(outcomes), unexpected(outcomes)[:3]
    assert set(kinds(outcomes)) <= {"hold", "not_enough_seats", "Allotment", "int"}
    fresh = assert_consistent(world.tenant, world.departure)
    with tenant_context(world.tenant):
        assert not Hold.objects.filter(idempotency_key__startswith="old", status=Hold.Status.ACTIVE).exists()
    assert fresh.allotted == 0  # released: whatever was unused went back to general sale


def test_expired_seats_are_resold_once_when_many_writers_release_them_together():
    world = build_world(capacity=50)
    with tenant_context(world.tenant):
        old = [place_hold(world.departure, {"adult": 1}, "retail", f"old{n}") for n in range(50)]
    for hold in old:
        age(world, hold)

    def work(index):
        if index < 2:
            return [attempt(world.tenant, expire_holds)]
        return [
            attempt(
                world.tenant, lambda n=n: place_hold(world.departure, {"adult": 2}, "retail", f"n{index}-{n}")
            )
            for n in range(2)
        ]

    outcomes = run_together(work)

    assert not unexpected(outcomes), unexpected(outcomes)[:3]
    holds = [outcome for outcome in outcomes if isinstance(outcome, Hold)]
    assert len(holds) == 25  # 60 requests of 2 seats for the 50 seats the expired holds gave back
    fresh = assert_consistent(world.tenant, world.departure)
    assert fresh.held == 50
    with tenant_context(world.tenant):
        assert Hold.objects.filter(status=Hold.Status.EXPIRED).count() == 50


def test_cancel_racing_holds_and_sales_never_leaves_a_sale_on_a_cancelled_departure():
    world = build_world(capacity=200)

    def book(index):
        def run():
            placed = place_hold(world.departure, {"adult": 1}, "retail", f"b{index}")
            return convert_hold(placed) if index % 3 == 0 else placed

        return run

    def work(index):
        if index in (5, 20):
            return [attempt(world.tenant, lambda: cancel_departure(world.departure))]
        return [attempt(world.tenant, book(index))]

    outcomes = run_together(work)

    assert not unexpected(outcomes), unexpected(outcomes)[:3]
    assert set(kinds(outcomes)) <= {
        "hold",
        "Departure",
        "departure_has_sales",
        "departure_not_open",
        "departure_cancelled",
    }
    fresh = assert_consistent(world.tenant, world.departure)
    if fresh.status == "cancelled":
        assert fresh.sold == 0
        assert "departure_has_sales" not in kinds(outcomes)
    else:
        assert fresh.sold > 0


def test_one_key_used_for_a_retail_and_an_agency_hold_at_once_never_deadlocks():
    """A client bug (one key, two different requests) must still end in one hold and clear refusals."""
    world = build_world(capacity=50)
    with tenant_context(world.tenant):
        create_allotment(world.agency, world.departure, 10, world.departure.starts_at - dt.timedelta(days=3))

    def work(index):
        outcomes = []
        for round_ in range(5):
            key = f"shared-{round_}"
            if index % 2:
                call = lambda: place_hold(world.departure, {"adult": 1}, "trade", key, agency=world.agency)  # noqa: E731
            else:
                call = lambda: place_hold(world.departure, {"adult": 1}, "retail", key)  # noqa: E731
            outcomes.append(attempt(world.tenant, call))
        return outcomes

    outcomes = run_together(work, threads=8)

    assert not unexpected(outcomes), unexpected(outcomes)[:3]
    with tenant_context(world.tenant):
        assert Hold.objects.count() == 5
    assert_consistent(world.tenant, world.departure)
