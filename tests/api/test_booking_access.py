"""An agency's booker never reaches beyond its agency, even when someone also gave the same person a staff role."""

from __future__ import annotations

import pytest

from bookings.models import Booking
from core.errors import DomainError
from tenants import services as team
from tenants.context import tenant_context
from tenants.models import Membership
from tests.api.conftest import Api
from tests.bookings.world import World
from tests.factories import owner_of

pytestmark = pytest.mark.django_db


def _world_with_booker():
    from accounts.models import User
    from partners.models import PartnerUser
    from tests.factories import PASSWORD

    world = World()
    with tenant_context(world.tenant):
        booker = User.objects.create_user("booker@agency.example", PASSWORD)
        PartnerUser.objects.create(user=booker, agency=world.agency)
    return world, booker


def test_a_booker_cannot_be_added_to_the_team():
    world, booker = _world_with_booker()
    with tenant_context(world.tenant), pytest.raises(DomainError) as refused:
        team.add_member(email=booker.email, role="guide", actor=owner_of(world.tenant))
    assert refused.value.code == "partner_account"
    with tenant_context(world.tenant):
        assert not Membership.objects.filter(user=booker).exists()


def test_a_booker_who_is_also_staff_still_sees_and_changes_only_their_agencys_bookings():
    world, booker = _world_with_booker()
    with tenant_context(world.tenant):
        Membership.objects.create(user=booker, role="guide")  # made by hand: the services refuse it
        own = world.trade_booking("own", 1)
        retail_hold = world.hold("retail", {"adult": 1})
        from bookings import services
        from bookings.services import Lead

        other = services.create_booking(
            holds=[retail_hold], lead=Lead("Bo", "bo@example.com"), channel="retail", language="en"
        )
    api = Api(world.tenant, booker)

    listed = [row["id"] for row in api("get", "/api/v1/bookings/").json()["results"]]
    refused = api("post", f"/api/v1/bookings/{other.pk}/cancel/", {"reason": "not mine"})

    assert listed == [str(own.pk)]
    assert refused.status_code == 404
    with tenant_context(world.tenant):
        assert Booking.objects.get(pk=other.pk).status == "on_hold"
