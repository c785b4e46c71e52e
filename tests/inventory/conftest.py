"""A small catalogue for the capacity tests: one tenant, a tour in Lisbon with adult/child/infant units, an option,
a 50-seat departure a month ahead and an active partner agency."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from inventory.models import Allotment, Departure, Hold
from partners.models import Agency
from tenants.context import tenant_context
from tenants.models import Tenant
from tests.catalogue import make_agency, make_departure, make_option, make_tour, make_unit_types
from tests.factories import make_tenant
from tours.models import Option, Tour, UnitType


@dataclass
class World:
    tenant: Tenant
    tour: Tour
    option: Option
    units: dict[str, UnitType]
    departure: Departure
    agency: Agency


def build_world(capacity: int = 50) -> World:
    tenant = make_tenant()
    with tenant_context(tenant):
        tour = make_tour()
        option = make_option(tour)
        units = make_unit_types(tour)
        departure = make_departure(option, capacity=capacity)
        agency = make_agency()
    return World(tenant, tour, option, units, departure, agency)


@pytest.fixture
def world() -> World:
    return build_world()


def seats_of(world: World, departure: Departure | None = None) -> tuple[int, int, int, int]:
    """(capacity, allotted, held, sold) as stored now."""
    with tenant_context(world.tenant):
        fresh = Departure.objects.get(pk=(departure or world.departure).pk)
    return fresh.capacity, fresh.allotted, fresh.held, fresh.sold


def hold_count(world: World) -> int:
    with tenant_context(world.tenant):
        return Hold.objects.count()


def allotment_state(world: World, allotment: Allotment) -> tuple[int, int, str]:
    with tenant_context(world.tenant):
        fresh = Allotment.objects.get(pk=allotment.pk)
    return fresh.seats, fresh.used, fresh.status


def age(world: World, hold: Hold, seconds: int = 3600) -> None:
    """Move a hold's expiry into the past, as if its time had run out."""
    with tenant_context(world.tenant):
        Hold.objects.filter(pk=hold.pk).update(expires_at=hold.expires_at - dt.timedelta(seconds=seconds))
