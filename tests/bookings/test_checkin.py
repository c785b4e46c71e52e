"""Check-in with the voucher's signed token: once per traveller, only for this tenant's confirmed bookings."""

from __future__ import annotations

import pytest

from bookings import checkin, services
from bookings.services import TravellerDetails
from core.errors import DomainError
from tenants.context import tenant_context
from tests.bookings.world import LEAD, World
from tests.factories import make_tenant

pytestmark = pytest.mark.django_db


def _confirmed_with_travellers(world):
    hold = world.hold("h", {"adult": 2}, agency=world.agency)
    booking = services.create_booking(
        holds=[hold],
        lead=LEAD,
        channel="trade",
        language="en",
        agency=world.agency,
        on_account=True,
        travellers=[TravellerDetails("adult", "Ana", "Lima"), TravellerDetails("adult", "Rui", "Lima")],
    )
    return services.confirm_booking(booking)


def test_a_scan_checks_everyone_in_once():
    world = World()
    with tenant_context(world.tenant):
        booking = _confirmed_with_travellers(world)
        token = checkin.check_in_token(booking)

        checked = checkin.check_in(token)

        assert len(checked) == 2 and all(t.checked_in_at for t in checked)
        with pytest.raises(DomainError) as again:
            checkin.check_in(token)
        assert again.value.code == "already_checked_in" and "Ana Lima" in again.value.message


def test_travellers_can_be_checked_in_one_by_one():
    world = World()
    with tenant_context(world.tenant):
        booking = _confirmed_with_travellers(world)
        token = checkin.check_in_token(booking)
        ana, rui = booking.travellers.order_by("id")
        assert [t.pk for t in checkin.check_in(token, [str(ana.pk)])] == [ana.pk]
        assert [t.pk for t in checkin.check_in(token, [str(rui.pk)])] == [rui.pk]


def test_tampered_foreign_and_unconfirmed_tokens_are_refused():
    world = World()
    with tenant_context(world.tenant):
        booking = _confirmed_with_travellers(world)
        token = checkin.check_in_token(booking)
        pending = services.create_booking(holds=[world.hold("p")], lead=LEAD, channel="retail", language="en")
        for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "not-a-token"):
            with pytest.raises(DomainError) as refused:
                checkin.check_in(bad)
            assert refused.value.code == "invalid_token"
        with pytest.raises(DomainError) as refused:
            checkin.check_in(checkin.check_in_token(pending))
        assert refused.value.code == "not_confirmed"
    with tenant_context(make_tenant()), pytest.raises(DomainError) as foreign:
        checkin.check_in(token)
    assert foreign.value.code == "invalid_token"
