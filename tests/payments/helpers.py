"""Bookings that take money: a retail booking on hold (2 adults, 200.00 EUR) from the bookings World."""

from __future__ import annotations

from bookings import services
from bookings.models import Booking
from tenants.roles import Role
from tests.bookings.world import LEAD, World
from tests.factories import make_member

TOTAL = 20000  # 2 adults at 100.00 EUR, retail


def retail_booking(world: World, key: str, adults: int = 2) -> Booking:
    """On hold, nothing paid (call inside the tenant's context)."""
    hold = world.hold(key, {"adult": adults})
    return services.create_booking(holds=[hold], lead=LEAD, channel="retail", language="en")


def clerk(world: World):
    return make_member(world.tenant, Role.FINANCE)
