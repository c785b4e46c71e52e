"""Allotments: created from general sale, for a range, released (by hand and when due), resized."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from core.errors import DomainError
from inventory.models import Allotment, Departure
from inventory.services import (
    convert_hold,
    create_allotment,
    create_allotments,
    place_hold,
    release_allotment,
    release_allotments,
    release_due_allotments,
    resize_allotment,
)
from partners.models import Agency
from tenants.context import tenant_context
from tests.catalogue import make_agency, make_departure
from tests.inventory.conftest import age, allotment_state, seats_of

pytestmark = pytest.mark.django_db


def release_time(world, days=7):
    return world.departure.starts_at - dt.timedelta(days=days)


def allot(world, seats=10, **kwargs):
    """An allotment; with a ``release_at`` in the past it is one whose release time has passed since it was made
    (the service refuses to create one that way)."""
    release_at = kwargs.pop("release_at", release_time(world))
    with tenant_context(world.tenant):
        allotment = create_allotment(
            world.agency, world.departure, seats, max(release_at, release_time(world))
        )
        if release_at < allotment.release_at:
            Allotment.objects.filter(pk=allotment.pk).update(release_at=release_at)
            allotment.release_at = release_at
        return allotment


def test_create_takes_seats_from_general_sale(world):
    allotment = allot(world, 10)
    assert (allotment.seats, allotment.used, allotment.status) == (10, 0, "active")
    assert seats_of(world) == (50, 10, 0, 0)


def test_create_refuses_more_than_general_sale_has(world):
    with tenant_context(world.tenant):
        place_hold(world.departure, {"adult": 45}, "retail", "h")
        with pytest.raises(DomainError) as caught:
            create_allotment(world.agency, world.departure, 6, release_time(world))
        assert caught.value.code == "not_enough_seats"
        assert "Only 5 seats" in caught.value.message
        assert not Allotment.objects.exists()
    assert seats_of(world) == (50, 0, 45, 0)


def test_create_counts_expired_holds_as_free(world):
    with tenant_context(world.tenant):
        stale = place_hold(world.departure, {"adult": 45}, "retail", "h")
    age(world, stale)
    assert allot(world, 50).seats == 50
    assert seats_of(world) == (50, 50, 0, 0)


@pytest.mark.parametrize(
    ("seats", "release_at", "field"),
    [
        (0, None, "seats"),
        ("5", None, "seats"),
        (5, dt.datetime(2030, 1, 1), "release_at"),
        (5, "later", "release_at"),
        (5, "after_start", "release_at"),
    ],
)
def test_create_refuses_bad_input(world, seats, release_at, field):
    if release_at is None:
        release_at = release_time(world)
    elif release_at == "after_start":
        release_at = world.departure.starts_at + dt.timedelta(minutes=1)
    with tenant_context(world.tenant):
        with pytest.raises(DomainError) as caught:
            create_allotment(world.agency, world.departure, seats, release_at)
        assert caught.value.code == "invalid_allotment"
        assert field in caught.value.fields
        assert not Allotment.objects.exists()
    assert seats_of(world) == (50, 0, 0, 0)


def test_create_refuses_an_inactive_agency_and_a_second_block(world):
    allot(world, 5)
    with tenant_context(world.tenant):
        with pytest.raises(DomainError) as caught:
            create_allotment(world.agency, world.departure, 5, release_time(world))
        assert caught.value.code == "allotment_exists"
        closed = make_agency(status=Agency.Status.CLOSED)
        with pytest.raises(DomainError) as caught:
            create_allotment(closed, world.departure, 5, release_time(world))
        assert "agency" in caught.value.fields
    assert seats_of(world) == (50, 5, 0, 0)


def test_create_for_a_range_is_all_or_nothing(world):
    with tenant_context(world.tenant):
        later = [
            make_departure(world.option, starts_at=world.departure.starts_at + dt.timedelta(days=d))
            for d in (1, 2)
        ]
        made = create_allotments(world.agency, [world.departure, *later], 4, release_days_before=3)
        assert [a.release_at for a in made] == [
            d.starts_at - dt.timedelta(days=3) for d in [world.departure, *later]
        ]
        small = make_departure(
            world.option, capacity=2, starts_at=world.departure.starts_at + dt.timedelta(days=3)
        )
        other = make_agency()
        with pytest.raises(DomainError) as caught:
            create_allotments(other, [*later, small], 4, release_days_before=3)
        assert caught.value.code == "allotment_not_possible"
        assert list(caught.value.fields["departures"]) == [str(small.pk)]
        assert not Allotment.objects.filter(agency=other).exists()
        for bad in (-1, "3"):
            with pytest.raises(DomainError):
                create_allotments(other, later, 4, release_days_before=bad)
    assert seats_of(world, later[0]) == (50, 4, 0, 0)
    assert seats_of(world, small) == (2, 0, 0, 0)


def test_release_gives_unused_seats_back_and_keeps_used_ones(world):
    allotment = allot(world, 10)
    with tenant_context(world.tenant):
        place_hold(world.departure, {"adult": 3}, "trade", "t1", agency=world.agency)
        convert_hold(place_hold(world.departure, {"adult": 2}, "trade", "t2", agency=world.agency))
        released = release_allotment(allotment)
        assert released.status == "released"
        assert release_allotment(allotment).status == "released"  # again: nothing moves
    assert seats_of(world) == (50, 0, 3, 2)
    assert allotment_state(world, allotment) == (10, 5, "released")


def test_several_blocks_on_several_departures_are_released_together_in_the_lock_order(world):
    with tenant_context(world.tenant):
        second = make_departure(
            world.option, capacity=20, starts_at=world.departure.starts_at + dt.timedelta(days=1)
        )
        later, earlier = sorted((world.departure, second), key=lambda departure: departure.pk, reverse=True)
        blocks = [
            create_allotment(world.agency, departure, 4, release_time(world))
            for departure in (later, earlier)
        ]
        assert [block.status for block in release_allotments(blocks)] == ["released", "released"]
        assert [Departure.objects.get(pk=d.pk).allotted for d in (later, earlier)] == [0, 0]


def test_release_due_allotments_releases_only_due_ones(world):
    due = allot(world, 10, release_at=timezone.now() - dt.timedelta(minutes=1))
    with tenant_context(world.tenant):
        later = create_allotment(make_agency(), world.departure, 5, release_time(world))
        assert release_due_allotments() == 1
        assert release_due_allotments() == 0
        assert release_due_allotments(now=release_time(world) + dt.timedelta(seconds=1)) == 1
    assert allotment_state(world, due)[2] == allotment_state(world, later)[2] == "released"
    assert seats_of(world) == (50, 0, 0, 0)


def test_resize_grows_from_and_shrinks_back_to_general_sale(world):
    allotment = allot(world, 10)
    with tenant_context(world.tenant):
        place_hold(world.departure, {"adult": 4}, "trade", "t", agency=world.agency)
        assert resize_allotment(allotment, 20).seats == 20
        assert seats_of(world) == (50, 16, 4, 0)
        assert resize_allotment(allotment, 4).seats == 4
        assert seats_of(world) == (50, 0, 4, 0)
        with pytest.raises(DomainError) as caught:
            resize_allotment(allotment, 3)
        assert caught.value.code == "allotment_below_used"
        place_hold(world.departure, {"adult": 40}, "retail", "r")
        with pytest.raises(DomainError) as caught:
            resize_allotment(allotment, 11)
        assert caught.value.code == "not_enough_seats"
        with pytest.raises(DomainError):
            resize_allotment(allotment, 0)
        release_allotment(allotment)
        with pytest.raises(DomainError) as caught:
            resize_allotment(allotment, 5)
        assert caught.value.code == "allotment_released"
    assert allotment_state(world, allotment) == (4, 4, "released")
    assert seats_of(world) == (50, 0, 44, 0)
