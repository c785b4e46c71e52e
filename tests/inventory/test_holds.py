"""place_hold, release_hold, extend_hold, convert_hold and expire_holds, called directly."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from core.errors import DomainError
from inventory.cache import availability_version
from inventory.models import Allotment, Departure, Hold
from inventory.services import (
    change_capacity,
    close_departure,
    convert_hold,
    create_allotment,
    expire_holds,
    extend_hold,
    place_hold,
    release_allotment,
    release_hold,
    reopen_departure,
    resize_allotment,
)
from partners.models import Agency
from tenants.context import tenant_context
from tests.catalogue import make_departure
from tests.inventory.conftest import age, allotment_state, hold_count, seats_of

pytestmark = pytest.mark.django_db


def hold(world, units=None, key="k1", channel="retail", **kwargs):
    with tenant_context(world.tenant):
        return place_hold(world.departure, {"adult": 2} if units is None else units, channel, key, **kwargs)


def refused(world, code: str, **kwargs) -> DomainError:
    before = (seats_of(world), hold_count(world))
    with pytest.raises(DomainError) as caught:
        hold(world, **kwargs)
    assert caught.value.code == code, caught.value.message
    assert (seats_of(world), hold_count(world)) == before, "a refused hold changed something"
    return caught.value


def test_hold_takes_seats_of_units_that_count(world):
    placed = hold(world, units={"adult": 2, "child": 1, "infant": 1})

    assert placed.seats == 3  # the infant takes no seat
    assert placed.units == {"adult": 2, "child": 1, "infant": 1}
    assert placed.status == Hold.Status.ACTIVE and placed.seats_from_allotment == 0
    assert seats_of(world) == (50, 0, 3, 0)


def test_seats_per_unit_multiplies(world):
    with tenant_context(world.tenant):
        world.units["child"].seats_per_unit = 2
        world.units["child"].save()
    assert hold(world, units={"child": 3}).seats == 6


def test_hold_of_only_lap_infants_takes_no_seat_but_is_a_hold(world):
    placed = hold(world, units={"infant": 1})
    assert placed.seats == 0
    assert seats_of(world) == (50, 0, 0, 0)


def test_expiry_defaults_per_channel_and_follows_the_setting(world, settings):
    before = timezone.now()
    retail = hold(world, key="r")
    trade = hold(world, key="t", channel="trade", agency=world.agency)
    assert dt.timedelta(seconds=899) < retail.expires_at - before <= dt.timedelta(seconds=901)
    assert dt.timedelta(seconds=3599) < trade.expires_at - before <= dt.timedelta(seconds=3601)

    settings.HOLD_TTL_SECONDS = {"retail": 120}
    assert hold(world, key="r2").expires_at - timezone.now() <= dt.timedelta(seconds=120)
    assert hold(world, key="explicit", ttl=30).expires_at - timezone.now() <= dt.timedelta(seconds=30)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"units": {"pensioner": 1}}, "units.pensioner"),
        ({"units": {"adult": -1}}, "units.adult"),
        ({"units": {"adult": 1.5}}, "units.adult"),
        ({"units": {"adult": True}}, "units.adult"),
        ({"units": {"adult": 0, "child": 0}}, "units"),
        ({"units": []}, "units"),
        ({"channel": "wholesale"}, "channel"),
        ({"channel": "trade"}, "agency"),
        ({"key": ""}, "idempotency_key"),
        ({"key": "x" * 101}, "idempotency_key"),
        ({"ttl": 0}, "ttl"),
        ({"ttl": 10**7}, "ttl"),
    ],
)
def test_bad_input_is_refused_with_field_errors_and_changes_nothing(world, kwargs, field):
    error = refused(world, "invalid_hold", **kwargs)
    assert field in error.fields, error.fields


def test_unit_limits_per_booking(world):
    with tenant_context(world.tenant):
        world.units["adult"].min_per_booking = 1
        world.units["adult"].save()
        world.units["child"].max_per_booking = 3
        world.units["child"].save()
    assert "units.adult" in refused(world, "invalid_hold", units={"child": 2}).fields
    assert "units.child" in refused(world, "invalid_hold", units={"adult": 1, "child": 4}).fields
    assert hold(world, units={"adult": 1, "child": 3}).seats == 4


def test_option_participant_limits(world):
    with tenant_context(world.tenant):
        world.option.min_participants = 2
        world.option.max_participants = 4
        world.option.save()
    assert "at least 2" in refused(world, "invalid_hold", units={"adult": 1}).fields["units"]
    assert "at most 4" in refused(world, "invalid_hold", units={"adult": 5}).fields["units"]
    assert hold(world, units={"adult": 4}).seats == 4


def test_suspended_agency_cannot_hold(world):
    with tenant_context(world.tenant):
        Agency.objects.filter(pk=world.agency.pk).update(status=Agency.Status.SUSPENDED)
    error = refused(world, "invalid_hold", channel="trade", agency=world.agency)
    assert "agency" in error.fields


def test_not_enough_seats_names_the_seats_left(world):
    hold(world, units={"adult": 47}, key="big")
    error = refused(world, "not_enough_seats", units={"adult": 4}, key="late")
    assert error.message.startswith("Only 3 seats left on ")
    assert error.status == 409


def test_closed_or_cancelled_departure_takes_no_holds(world):
    with tenant_context(world.tenant):
        Departure.objects.filter(pk=world.departure.pk).update(status=Departure.Status.CLOSED)
    assert "closed" in refused(world, "departure_not_open").message


def test_no_holds_after_the_cutoff(world):
    with tenant_context(world.tenant):
        soon = make_departure(
            world.option, starts_at=timezone.now() + dt.timedelta(minutes=30), cutoff_minutes=60
        )
        with pytest.raises(DomainError) as caught:
            place_hold(soon, {"adult": 1}, "retail", "soon")
        assert caught.value.code == "sales_closed"
        soon.refresh_from_db()
        assert soon.held == 0 and not Hold.objects.filter(departure=soon).exists()


def test_same_idempotency_key_returns_the_same_hold(world):
    first = hold(world, units={"adult": 2})
    again = hold(world, units={"adult": 2, "child": 0})
    assert again.pk == first.pk
    assert seats_of(world) == (50, 0, 2, 0) and hold_count(world) == 1


def test_same_key_for_another_request_is_refused(world):
    hold(world, units={"adult": 2})
    error = refused(world, "idempotency_key_reused", units={"adult": 3})
    assert error.status == 409
    with tenant_context(world.tenant):
        other = make_departure(world.option, starts_at=world.departure.starts_at + dt.timedelta(days=1))
        with pytest.raises(DomainError) as caught:
            place_hold(other, {"adult": 2}, "retail", "k1")
    assert caught.value.code == "idempotency_key_reused"


def test_lazily_expired_seats_are_sold_again_by_the_next_hold(world):
    old = hold(world, units={"adult": 50}, key="old")
    refused(world, "not_enough_seats", units={"adult": 1}, key="new")
    age(world, old)

    new = hold(world, units={"adult": 10}, key="new")

    assert new.status == Hold.Status.ACTIVE
    assert seats_of(world) == (50, 0, 10, 0)
    with tenant_context(world.tenant):
        old.refresh_from_db()
    assert old.status == Hold.Status.EXPIRED and old.ended_at is not None


def test_sweep_expires_holds_and_gives_seats_back(world):
    expired = [hold(world, units={"adult": 3}, key=f"e{i}") for i in range(3)]
    live = hold(world, units={"adult": 1}, key="live")
    for each in expired:
        age(world, each)

    with tenant_context(world.tenant):
        assert expire_holds(limit=2) == 2  # batches
        assert expire_holds() == 1
        assert expire_holds() == 0
        statuses = dict(Hold.objects.values_list("idempotency_key", "status"))
    assert statuses == {"e0": "expired", "e1": "expired", "e2": "expired", "live": "active"}
    assert seats_of(world) == (50, 0, 1, 0)
    assert live.status == Hold.Status.ACTIVE


def test_release_gives_seats_back_and_is_idempotent(world):
    placed = hold(world, units={"adult": 4})
    with tenant_context(world.tenant):
        released = release_hold(placed)
        assert released.status == Hold.Status.RELEASED and released.ended_at
        assert release_hold(placed).status == Hold.Status.RELEASED
    assert seats_of(world) == (50, 0, 0, 0)


def test_convert_moves_held_to_sold(world):
    placed = hold(world, units={"adult": 4})
    with tenant_context(world.tenant):
        sold = convert_hold(placed)
        assert sold.status == Hold.Status.CONVERTED
        with pytest.raises(DomainError) as caught:
            release_hold(placed)
        assert caught.value.code == "hold_converted"
        with pytest.raises(DomainError) as caught:
            convert_hold(placed)
        assert caught.value.code == "hold_not_active"
    assert seats_of(world) == (50, 0, 0, 4)


def test_convert_refuses_an_expired_or_released_hold(world):
    expired = hold(world, key="a")
    released = hold(world, key="b")
    age(world, expired)
    with tenant_context(world.tenant):
        release_hold(released)
    for each, code in ((expired, "hold_expired"), (released, "hold_not_active")):
        with tenant_context(world.tenant), pytest.raises(DomainError) as caught:
            convert_hold(each)
        assert caught.value.code == code
    assert seats_of(world) == (50, 0, 2, 0)  # the expired hold's seats wait for the next write or sweep
    with tenant_context(world.tenant):
        expire_holds()
        with pytest.raises(DomainError) as caught:
            convert_hold(expired)
        assert caught.value.code == "hold_expired"


def test_extend_within_the_maximum_lifetime(world, settings):
    settings.HOLD_MAX_LIFETIME_SECONDS = 1800
    placed = hold(world)
    with tenant_context(world.tenant):
        extended = extend_hold(placed, 600)
        assert extended.expires_at == placed.expires_at + dt.timedelta(seconds=600)
        with pytest.raises(DomainError) as caught:
            extend_hold(placed, 600)
        assert caught.value.code == "hold_extension_too_long"
        for bad in (0, -5, "60"):
            with pytest.raises(DomainError):
                extend_hold(placed, bad)
        placed.refresh_from_db()
    assert placed.expires_at == extended.expires_at


def test_extend_refuses_expired_and_ended_holds(world):
    expired = hold(world, key="a")
    age(world, expired)
    with tenant_context(world.tenant):
        with pytest.raises(DomainError) as caught:
            extend_hold(expired, 60)
        assert caught.value.code == "hold_expired"
        released = release_hold(hold(world, key="b"))
        with pytest.raises(DomainError) as caught:
            extend_hold(released, 60)
        assert caught.value.code == "hold_not_active"


# --- allotments through holds ----------------------------------------------------------------------------------


def allot(world, seats=5):
    with tenant_context(world.tenant):
        return create_allotment(
            world.agency, world.departure, seats, world.departure.starts_at - dt.timedelta(days=7)
        )


def test_trade_hold_takes_from_the_allotment_first_then_general_sale(world):
    allotment = allot(world, 5)
    first = hold(world, units={"adult": 3}, key="t1", channel="trade", agency=world.agency)
    second = hold(world, units={"adult": 4}, key="t2", channel="trade", agency=world.agency)

    assert (first.seats_from_allotment, second.seats_from_allotment) == (3, 2)
    assert first.allotment_id == allotment.pk
    assert seats_of(world) == (50, 0, 7, 0)
    assert allotment_state(world, allotment) == (5, 5, "active")


def test_retail_cannot_take_allotted_seats(world):
    allot(world, 45)
    error = refused(world, "not_enough_seats", units={"adult": 6})
    assert error.message.startswith("Only 5 seats left")


def test_agency_sees_its_allotment_in_the_seats_left(world):
    allot(world, 45)
    hold(world, units={"adult": 5}, key="retail")
    error = refused(
        world, "not_enough_seats", units={"adult": 46}, key="t", channel="trade", agency=world.agency
    )
    assert error.message.startswith("Only 45 seats left")
    assert (
        hold(world, units={"adult": 45}, key="t", channel="trade", agency=world.agency).seats_from_allotment
        == 45
    )


def test_released_hold_returns_seats_to_an_active_allotment(world):
    allotment = allot(world, 5)
    placed = hold(world, units={"adult": 7}, key="t", channel="trade", agency=world.agency)
    with tenant_context(world.tenant):
        release_hold(placed)
    assert seats_of(world) == (50, 5, 0, 0)
    assert allotment_state(world, allotment) == (5, 0, "active")


def test_released_hold_returns_seats_to_general_sale_once_the_allotment_is_released(world):
    allotment = allot(world, 5)
    placed = hold(world, units={"adult": 3}, key="t", channel="trade", agency=world.agency)
    with tenant_context(world.tenant):
        release_allotment(allotment)
    assert seats_of(world) == (50, 0, 3, 0)
    age(world, placed)
    with tenant_context(world.tenant):
        assert expire_holds() == 1
    assert seats_of(world) == (50, 0, 0, 0)
    assert allotment_state(world, allotment) == (5, 0, "released")


def test_sold_seats_stay_counted_in_the_allotment(world):
    allotment = allot(world, 5)
    placed = hold(world, units={"adult": 2}, key="t", channel="trade", agency=world.agency)
    with tenant_context(world.tenant):
        convert_hold(placed)
        release_allotment(allotment)
    assert seats_of(world) == (50, 0, 0, 2)
    assert allotment_state(world, allotment) == (5, 2, "released")


# --- cache -------------------------------------------------------------------------------------------------------


def test_every_seat_movement_bumps_the_availability_version(world, django_capture_on_commit_callbacks):
    def version():
        return availability_version(world.tenant.pk, world.tour.pk)

    start = version()
    release_at = world.departure.starts_at - dt.timedelta(days=1)
    steps = [
        lambda: place_hold(world.departure, {"adult": 1}, "retail", "c1"),
        lambda: release_hold(Hold.objects.get(idempotency_key="c1")),
        lambda: convert_hold(place_hold(world.departure, {"adult": 1}, "retail", "c2")),
        lambda: create_allotment(world.agency, world.departure, 3, release_at),
        lambda: resize_allotment(Allotment.objects.get(), 4),
        lambda: release_allotment(Allotment.objects.get()),
        lambda: change_capacity(world.departure, 40),
        lambda: close_departure(world.departure),
        lambda: reopen_departure(world.departure),
        lambda: age(world, place_hold(world.departure, {"adult": 1}, "retail", "c3")),
        lambda: expire_holds(),
    ]
    for step in steps:
        with django_capture_on_commit_callbacks(execute=True), tenant_context(world.tenant):
            step()
        assert version() > start
        start = version()


def test_a_refusal_caught_inside_the_transaction_leaves_nothing_behind(world):
    allotment = allot(world, 5)
    hold(world, units={"adult": 45}, key="retail")
    with tenant_context(world.tenant):  # the caller handles the refusal and commits its transaction
        with pytest.raises(DomainError) as caught:
            place_hold(world.departure, {"adult": 8}, "trade", "too-many", agency=world.agency)
        assert caught.value.code == "not_enough_seats"
        assert caught.value.message.startswith("Only 5 seats left")
    with tenant_context(world.tenant):
        assert not Hold.objects.filter(idempotency_key="too-many").exists()
        assert Hold.objects.count() == 1
    assert seats_of(world) == (50, 5, 45, 0)
    assert allotment_state(world, allotment) == (5, 0, "active")
    # The key is free for a request that fits.
    assert hold(world, units={"adult": 5}, key="too-many", channel="trade", agency=world.agency).seats == 5


def test_a_retry_on_a_full_departure_still_returns_its_hold(world):
    first = hold(world, units={"adult": 50}, key="all")
    assert hold(world, units={"adult": 50}, key="all").pk == first.pk
    assert seats_of(world) == (50, 0, 50, 0)
