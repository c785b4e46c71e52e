"""Changing a booking's units: seats swapped atomically on the same departure, re-priced, travellers kept in line."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from bookings import services
from bookings.models import Booking
from core.errors import ConflictError, DomainError
from events.models import OutboxEvent
from inventory.models import Departure, Hold
from inventory.services import place_hold
from tenants.context import tenant_context
from tests.bookings.world import LEAD, World
from tests.catalogue import make_departure
from tests.races import attempt_together, unexpected
from tours.models import PromoCode

pytestmark = pytest.mark.django_db


def _modified_events(booking) -> list[dict]:
    return list(
        OutboxEvent.objects.filter(aggregate_id=str(booking.pk), name="booking.modified")
        .order_by("created_at")
        .values_list("payload", flat=True)
    )


def _state(world, booking):
    departure = world.fresh_departure()
    item = booking.items.get()
    return (
        departure.held,
        departure.sold,
        Booking.objects.get(pk=booking.pk).total,
        item.units,
        booking.travellers.count(),
    )


def test_a_confirmed_booking_takes_a_child_along_sold_seats_move_and_the_price_difference_is_announced():
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("a", adults=2)
        item = booking.items.get()
        old_hold = item.hold

        changed = services.modify_booking(
            booking, item, {"adult": 2, "child": 1}, actor="agent@example", reason="their son joins"
        )

        item.refresh_from_db()
        departure = world.fresh_departure()
        assert (departure.held, departure.sold) == (0, 3)
        assert (item.units, item.seats, item.total, changed.total) == (
            {"adult": 2, "child": 1},
            3,
            20000,
            20000,
        )
        assert item.quote["units"] == {"adult": 2, "child": 1}
        assert item.hold.status == Hold.Status.CONVERTED and item.hold_id != old_hold.pk
        assert Hold.objects.get(pk=old_hold.pk).status == Hold.Status.RELEASED
        assert changed.status == Booking.Status.CONFIRMED
        assert _modified_events(booking) == [
            {
                "reference": booking.reference,
                "change": "units",
                "item": str(item.pk),
                "units": {"from": {"adult": 2}, "to": {"adult": 2, "child": 1}},
                "removed_travellers": [],
                "difference": 4000,
                "reason": "their son joins",
                "by": "agent@example",
            }
        ]


def test_an_unconfirmed_booking_keeps_its_seats_held_and_its_expiry():
    world = World()
    with tenant_context(world.tenant):
        booking = world.trade_booking("a", 2)
        expires_at = booking.expires_at

        changed = services.modify_booking(booking, booking.items.get(), {"adult": 4})

        departure = world.fresh_departure()
        assert (departure.held, departure.sold) == (4, 0)
        assert changed.total == 32000 and changed.status == Booking.Status.ON_HOLD
        # Changing buys no time: the new hold lapses when the old one would have.
        assert expires_at - dt.timedelta(seconds=1) <= changed.expires_at <= expires_at
        assert booking.items.get().hold.expires_at == changed.expires_at


def test_fewer_travellers_must_say_who_leaves_and_those_are_removed():
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("a", adults=3)
        item = booking.items.get()
        before = _state(world, booking)

        with pytest.raises(DomainError) as refused:
            services.modify_booking(booking, item, {"adult": 2})

        assert "'adult'" in refused.value.message and "remove_travellers" in refused.value.fields
        assert _state(world, booking) == before
        leaving = booking.travellers.order_by("id").first()

        changed = services.modify_booking(booking, item, {"adult": 2}, remove_travellers=[str(leaving.pk)])

        assert changed.total == 16000
        assert (world.fresh_departure().sold, booking.travellers.count()) == (2, 2)
        assert not booking.travellers.filter(pk=leaving.pk).exists()
        assert _modified_events(booking)[-1]["removed_travellers"] == [str(leaving.pk)]
        assert _modified_events(booking)[-1]["difference"] == -8000


@pytest.mark.parametrize(
    ("units", "remove", "field"),
    [
        ({"adult": 0}, (), "units"),
        ({}, (), "units"),
        ({"adult": "two"}, (), "units.adult"),
        ({"adult": -1}, (), "units.adult"),
        ({"adult": 2}, (), "units"),  # unchanged
        ({"dragon": 1, "adult": 2}, (), "units"),
        ({"adult": 1}, ["not-an-id"], "remove_travellers"),
        ({"adult": 1}, ["0190b6a4-0000-7000-8000-000000000000"], "remove_travellers"),
    ],
)
def test_bad_changes_are_field_errors_and_change_nothing(units, remove, field):
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("a", adults=2)
        before = _state(world, booking)

        with pytest.raises(DomainError) as refused:
            services.modify_booking(booking, booking.items.get(), units, remove_travellers=remove)

        assert refused.value.status == 400
        assert any(name.startswith(field) for name in refused.value.fields), refused.value.fields
        assert _state(world, booking) == before
        assert _modified_events(booking) == []


def test_zero_travellers_is_a_cancellation():
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("a", adults=1)
        with pytest.raises(DomainError, match="cancel it instead"):
            services.modify_booking(booking, booking.items.get(), {"adult": 0}, remove_travellers=[])


def test_more_seats_than_are_left_is_a_conflict_and_the_old_seats_stay_sold():
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("a", adults=2)
        place_hold(world.fresh_departure(), {"adult": 15}, "retail", "others")  # 3 left besides ours
        before = _state(world, booking)

        with pytest.raises(ConflictError) as refused:
            services.modify_booking(booking, booking.items.get(), {"adult": 6})

        assert refused.value.code == "not_enough_seats"
        assert _state(world, booking) == before
        assert booking.items.get().hold.status == Hold.Status.CONVERTED
        # Exactly what is left fits: our 2 seats given back count for the new 5.
        assert services.modify_booking(booking, booking.items.get(), {"adult": 5}).total == 40000
        assert world.fresh_departure().sold == 5 and world.fresh_departure().free == 0


def test_closed_bookings_started_departures_and_lapsed_holds_are_refused():
    world = World()
    with tenant_context(world.tenant):
        cancelled = services.cancel_booking(world.confirmed_booking("a"))
        with pytest.raises(ConflictError) as refused:
            services.modify_booking(cancelled, cancelled.items.get(), {"adult": 3})
        assert refused.value.code == "illegal_transition" and refused.value.fields == {
            "status": ["cancelled"]
        }

        lapsed = world.trade_booking("b", 2)
        Hold.objects.filter(booking_item__booking=lapsed).update(expires_at=timezone.now())
        with pytest.raises(ConflictError) as refused:
            services.modify_booking(lapsed, lapsed.items.get(), {"adult": 3})
        assert refused.value.code == "hold_expired"

        started = world.confirmed_booking("c")
        Departure.objects.filter(pk=world.departure.pk).update(
            starts_at=timezone.now() - dt.timedelta(minutes=5)
        )
        with pytest.raises(ConflictError) as refused:
            services.modify_booking(started, started.items.get(), {"adult": 3})
        assert refused.value.code == "departure_started"


def test_an_item_of_another_booking_is_refused():
    world = World()
    with tenant_context(world.tenant):
        mine, other = world.confirmed_booking("a"), world.confirmed_booking("b")
        for item in (other.items.get(), other.items.get().pk, "not-an-id"):
            with pytest.raises(DomainError) as refused:
                services.modify_booking(mine, item, {"adult": 3})
            assert "item" in refused.value.fields
        assert other.items.get().units == {"adult": 2}


def test_an_on_account_booking_grows_only_within_the_agencys_credit():
    world = World(credit_limit=40000)
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("a", adults=2)  # 16000 of 40000 used
        before = _state(world, booking)

        with pytest.raises(ConflictError) as refused:
            services.modify_booking(booking, booking.items.get(), {"adult": 6})  # +32000 > 24000 left

        assert refused.value.code == "credit_exceeded"
        assert _state(world, booking) == before
        # Only the increase needs credit: 16000 more fits in the 24000 left.
        assert services.modify_booking(booking, booking.items.get(), {"adult": 4}).total == 32000
        assert services.credit_available(world.agency) == 8000


def test_a_booking_keeps_its_promo_code_without_using_it_again():
    world = World()
    with tenant_context(world.tenant):
        PromoCode.objects.create(code="SPRING10", kind="percent", percent=10, max_uses=5)
        booking = services.create_booking(
            holds=[world.hold("h1")], lead=LEAD, channel="retail", language="en", promo_code="spring10"
        )
        assert booking.total == 18000

        changed = services.modify_booking(booking, booking.items.get(), {"adult": 3})

        assert changed.total == 27000  # 3 × 100.00 − 10 %
        assert booking.items.get().quote["promo_code"] == "SPRING10"
        assert PromoCode.objects.get(code="SPRING10").times_used == 1


def test_a_booking_that_took_the_last_use_of_a_promo_code_can_still_be_changed():
    world = World()
    with tenant_context(world.tenant):
        PromoCode.objects.create(code="LAST1", kind="percent", percent=10, max_uses=1)
        booking = services.create_booking(
            holds=[world.hold("h1")], lead=LEAD, channel="retail", language="en", promo_code="last1"
        )

        changed = services.modify_booking(booking, booking.items.get(), {"adult": 3})

        assert changed.total == 27000
        assert PromoCode.objects.get(code="LAST1").times_used == 1


def test_a_promo_code_that_no_longer_applies_refuses_the_change_rather_than_dropping_the_discount():
    world = World()
    with tenant_context(world.tenant):
        promo = PromoCode.objects.create(code="SPRING10", kind="percent", percent=10)
        booking = services.create_booking(
            holds=[world.hold("h1")], lead=LEAD, channel="retail", language="en", promo_code="spring10"
        )
        PromoCode.objects.filter(pk=promo.pk).update(is_active=False)

        with pytest.raises(ConflictError) as refused:
            services.modify_booking(booking, booking.items.get(), {"adult": 3})

        assert refused.value.code == "promo_no_longer_valid" and "promo_code" in refused.value.fields
        assert world.fresh_departure().held == 2


@pytest.mark.django_db(transaction=True)
def test_growing_a_booking_racing_a_hold_for_the_last_seats_never_oversells():
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("a", adults=2)
        place_hold(world.fresh_departure(), {"adult": 15}, "retail", "others")  # 3 free
        item = booking.items.get()

    def modify():
        services.modify_booking(booking, item, {"adult": 5})
        return "ok"

    def grab():
        place_hold(world.fresh_departure(), {"adult": 3}, "retail", "grab")
        return "ok"

    outcomes = dict(zip(["modify", "grab"], attempt_together(world.tenant, modify, grab), strict=True))

    assert not unexpected(outcomes.values()), outcomes
    assert sorted(outcomes.values()) == ["not_enough_seats", "ok"]
    with tenant_context(world.tenant):
        departure = world.fresh_departure()
        assert departure.held + departure.sold == 20 and departure.free == 0
        item.refresh_from_db()
        assert item.seats == (5 if outcomes["modify"] == "ok" else 2) == departure.sold


@pytest.mark.django_db(transaction=True)
def test_two_bookings_moving_in_opposite_directions_at_once_both_move():
    world = World()
    with tenant_context(world.tenant):
        first_departure = world.fresh_departure()
        second_departure = make_departure(
            world.option, capacity=20, starts_at=first_departure.starts_at + dt.timedelta(days=1)
        )
        there = world.confirmed_booking("there", adults=2)
        back_hold = place_hold(second_departure, {"adult": 2}, "trade", "back", agency=world.agency)
        back = services.confirm_booking(
            services.create_booking(
                holds=[back_hold],
                lead=LEAD,
                channel="trade",
                language="en",
                agency=world.agency,
                on_account=True,
            )
        )

    def move(booking, destination):
        services.move_departure(booking, booking.items.get(), destination)
        return "ok"

    outcomes = []
    for there_to, back_to in [(second_departure, first_departure), (first_departure, second_departure)] * 3:
        # six rounds: each move raced by the other booking's opposite move (a deadlock would land in outcomes)
        outcomes += attempt_together(world.tenant, lambda: move(there, there_to), lambda: move(back, back_to))

    assert outcomes == ["ok"] * 12, outcomes
    with tenant_context(world.tenant):
        assert Departure.objects.get(pk=first_departure.pk).sold == 2
        assert Departure.objects.get(pk=second_departure.pk).sold == 2
