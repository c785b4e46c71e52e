"""Check-in over the API: look a voucher's code up, then check travellers in; staff with bookings.check_in only."""

from __future__ import annotations

import pytest

from accounts.models import User
from bookings import services
from bookings.models import Traveller
from bookings.services import checkin
from partners.models import PartnerUser
from tenants.context import tenant_context
from tests.api.conftest import Api, staff_api
from tests.bookings.world import LEAD, World
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

PATH = "/api/v1/check-in/"


@pytest.fixture
def confirmed():
    """A world, a confirmed booking with two named adults, and its voucher's code."""
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("lima", 2)
        token = checkin.check_in_token(booking)
    return world, booking, token


def _checked_in(booking) -> int:
    with tenant_context(booking.tenant):
        return Traveller.objects.filter(booking=booking, checked_in_at__isnull=False).count()


def test_a_guide_looks_the_code_up_then_checks_everyone_in_once(confirmed):
    world, booking, token = confirmed
    guide = staff_api(world.tenant, "guide")

    sheet = guide("get", f"{PATH}?token={token.lower()}")  # typed in lower case: still the same code
    assert sheet.status_code == 200, sheet.content
    body = sheet.json()
    assert (body["reference"], body["status"], body["can_check_in"]) == (booking.reference, "confirmed", True)
    assert sorted(t["first_name"] for t in body["travellers"]) == ["Traveller1", "Traveller2"]
    assert all(t["checked_in_at"] is None for t in body["travellers"])
    assert body["departures"][0]["tour"] == world.tour.title
    assert _checked_in(booking) == 0  # looking changes nothing

    done = guide("post", PATH, {"token": token})
    assert done.status_code == 200, done.content
    assert done.json()["reference"] == booking.reference
    assert sorted(t["first_name"] for t in done.json()["checked_in"]) == ["Traveller1", "Traveller2"]
    assert all(t["checked_in_at"] for t in done.json()["checked_in"])

    again = guide("post", PATH, {"token": token})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_checked_in"
    assert guide("get", f"{PATH}?token={token}").json()["can_check_in"] is False


def test_named_travellers_are_checked_in_one_at_a_time(confirmed):
    world, booking, token = confirmed
    guide = staff_api(world.tenant, "operations")
    first, second = guide("get", f"{PATH}?token={token}").json()["travellers"]

    response = guide("post", PATH, {"token": token, "travellers": [first["id"]]})

    assert [t["id"] for t in response.json()["checked_in"]] == [first["id"]]
    assert _checked_in(booking) == 1
    assert guide("post", PATH, {"token": token, "travellers": [second["id"]]}).status_code == 200


@pytest.mark.parametrize("role", ["read_only", "finance"])
def test_roles_without_check_in_are_refused(confirmed, role):
    world, booking, token = confirmed
    member = staff_api(world.tenant, role)
    assert member("get", f"{PATH}?token={token}").status_code == 403
    assert member("post", PATH, {"token": token}).status_code == 403
    assert _checked_in(booking) == 0


def test_an_agencys_booker_is_refused_even_for_its_own_booking(confirmed):
    world, booking, token = confirmed
    booker = User.objects.create_user("booker@agency.example", PASSWORD)
    with tenant_context(world.tenant):
        PartnerUser.objects.create(user=booker, agency=world.agency)
    partner = Api(world.tenant, booker)
    assert partner("get", f"{PATH}?token={token}").status_code == 403
    assert partner("post", PATH, {"token": token}).status_code == 403
    assert _checked_in(booking) == 0


def test_without_credentials_nothing_is_shown(confirmed):
    world, booking, token = confirmed
    anonymous = staff_api(world.tenant, "guide")
    anonymous.auth = "not-a-jwt"
    response = anonymous("get", f"{PATH}?token={token}")
    assert response.status_code == 401 and "Traveller1" not in response.content.decode()


def test_bad_foreign_and_unconfirmed_codes_are_refused(confirmed):
    world, booking, token = confirmed
    guide = staff_api(world.tenant, "guide")
    other = World()
    with tenant_context(other.tenant):
        foreign = checkin.check_in_token(other.confirmed_booking("x", 1))
        pending = checkin.check_in_token(
            services.create_booking(holds=[other.hold("p")], lead=LEAD, channel="retail", language="en")
        )
    other_guide = staff_api(other.tenant, "guide")
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")

    for bad in (forged, "nonsense", foreign):
        for response in (guide("get", f"{PATH}?token={bad}"), guide("post", PATH, {"token": bad})):
            assert response.status_code == 400, (bad, response.content)
            assert response.json()["error"]["code"] == "invalid_token"
    refused = other_guide("post", PATH, {"token": pending})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_confirmed"
    unknown = guide("post", PATH, {"token": token, "travellers": ["not-a-uuid"]})
    assert unknown.status_code == 400 and "travellers" in unknown.json()["error"]["fields"]
    stranger = guide("post", PATH, {"token": token, "travellers": ["01a21890-fc09-7d29-b3cd-a924cd3b80cd"]})
    assert stranger.status_code == 400
    assert _checked_in(booking) == 0
