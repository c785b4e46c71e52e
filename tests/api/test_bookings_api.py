"""Bookings over the API."""

from __future__ import annotations

import pytest

from bookings.models import Booking
from inventory.models import Departure
from tenants.context import tenant_context
from tests.api.conftest import Api, staff_api
from tests.catalogue import make_agency, make_price_list
from tours.models import Channel, UnitType

pytestmark = pytest.mark.django_db

LEAD = {"name": "Ana Lima", "email": "ana@example.com"}


@pytest.fixture
def priced(world):
    tenant, tour, option, departure, agency, booker = world
    with tenant_context(tenant):
        units = {unit.code: unit for unit in UnitType.objects.filter(tour=tour)}
        make_price_list(option, units, {"adult": 10000, "child": 5000, "infant": 0})
        make_price_list(option, units, {"adult": 8000, "child": 4000, "infant": 0}, channel=Channel.TRADE)
    return world


def _hold(api, departure, key, units=None):
    response = api(
        "post",
        "/api/v1/holds/",
        {"departure": str(departure.pk), "units": units or {"adult": 2}},
        **{"Idempotency-Key": key},
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_a_booker_books_on_account_confirms_and_sees_only_their_agencys_bookings(priced):
    tenant, _, _, departure, agency, booker = priced
    api = Api(tenant, booker)
    body = {
        "holds": [_hold(api, departure, "h1")],
        "lead": LEAD,
        "travellers": [{"unit_code": "adult", "first_name": "Ana", "last_name": "Lima", "nationality": "PT"}],
        "on_account": True,
        "agent_reference": "ATL-42",
        "consent": {"terms_version": "2026-01"},
    }

    created = api("post", "/api/v1/bookings/", body, **{"Idempotency-Key": "b-1"})
    again = api("post", "/api/v1/bookings/", body, **{"Idempotency-Key": "b-1"})

    assert created.status_code == 201, created.content
    booking = created.json()
    assert (booking["status"], booking["channel"], booking["total"]) == ("on_hold", "trade", 16000)
    assert booking["agency"] == str(agency.pk) and booking["lead_email"] == "ana@example.com"
    assert again.json()["id"] == booking["id"]
    confirmed = api("post", f"/api/v1/bookings/{booking['id']}/confirm/")
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    with tenant_context(tenant):
        assert Departure.objects.get(pk=departure.pk).sold == 2

    staff = staff_api(tenant, "sales")
    other = _hold(staff, departure, "s1")
    with tenant_context(tenant):
        make_agency("Other Ltd")
    staff_booking = staff("post", "/api/v1/bookings/", {"holds": [other], "lead": LEAD})
    assert staff_booking.status_code == 201 and staff_booking.json()["channel"] == "back_office"
    assert [b["id"] for b in api("get", "/api/v1/bookings/").json()["results"]] == [booking["id"]]
    assert api("get", f"/api/v1/bookings/{staff_booking.json()['id']}/").status_code == 404
    assert len(staff("get", "/api/v1/bookings/").json()["results"]) == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lead": {"name": "Ana", "email": "nope"}}, "lead"),
        ({"holds": []}, "holds"),
        ({"holds": ["not-a-uuid"]}, "holds"),
        ({"travellers": [{"unit_code": "adult", "first_name": "A"}]}, "travellers"),
        (
            {
                "travellers": [
                    {"unit_code": "adult", "first_name": "A", "last_name": "B", "nationality": "Portugal"}
                ]
            },
            "travellers",
        ),
    ],
)
def test_bad_bookings_are_field_errors_and_create_nothing(priced, change, field):
    tenant, _, _, departure, *_ = priced
    staff = staff_api(tenant, "sales")
    body = {"holds": [_hold(staff, departure, "h")], "lead": LEAD, **change}

    response = staff("post", "/api/v1/bookings/", body)

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    with tenant_context(tenant):
        assert not Booking.objects.exists()


def test_a_retail_booking_with_money_due_cannot_be_confirmed_and_cancelling_twice_is_a_conflict(priced):
    tenant, _, _, departure, *_ = priced
    staff = staff_api(tenant, "sales")
    booking = staff(
        "post", "/api/v1/bookings/", {"holds": [_hold(staff, departure, "h")], "lead": LEAD}
    ).json()

    due = staff("post", f"/api/v1/bookings/{booking['id']}/confirm/")
    cancelled = staff("post", f"/api/v1/bookings/{booking['id']}/cancel/", {"reason": "changed plans"})
    again = staff("post", f"/api/v1/bookings/{booking['id']}/cancel/")

    assert due.status_code == 409 and due.json()["error"]["code"] == "payment_due"
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert again.status_code == 409 and again.json()["error"]["fields"] == {"status": ["cancelled"]}
    with tenant_context(tenant):
        assert Departure.objects.get(pk=departure.pk).held == 0


def test_read_only_staff_cannot_book(priced):
    tenant, _, _, departure, *_ = priced
    sales = staff_api(tenant, "sales")
    hold = _hold(sales, departure, "h")
    response = staff_api(tenant, "read_only")("post", "/api/v1/bookings/", {"holds": [hold], "lead": LEAD})
    assert response.status_code == 403
