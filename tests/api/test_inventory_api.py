"""Departures, holds and allotments over the API."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.test import Client
from django.utils import timezone

from inventory.models import Allotment, Departure, Hold
from tenants.context import tenant_context
from tests.api.conftest import Api, staff_api  # noqa: E402
from tests.factories import host_of

pytestmark = pytest.mark.django_db


def test_operations_creates_a_departure_in_the_tours_time_zone(world):
    tenant, tour, option, *_ = world
    api = staff_api(tenant, "operations")

    response = api(
        "post",
        "/api/v1/departures/",
        {"option": str(option.pk), "starts_local": "2027-07-01T09:00", "capacity": 12},
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["starts_at"].startswith("2027-07-01T07:00")  # 09:00 in Oslo (CEST) is 07:00 UTC
    assert body["local_date"] == "2027-07-01" and body["free"] == 12


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"starts_local": "2027-07-01T09:00", "capacity": 12}, "option"),
        ({"option": "{option}", "starts_local": "tomorrow", "capacity": 12}, "starts_local"),
        ({"option": "{option}", "starts_local": "2027-07-01T09:00", "capacity": 0}, "capacity"),
        ({"option": "{option}", "starts_local": "2027-07-01T09:00", "capacity": "many"}, "capacity"),
        ({"option": str(uuid.uuid4()), "starts_local": "2027-07-01T09:00", "capacity": 5}, "option"),
    ],
)
def test_bad_departure_input_changes_nothing(world, body, field):
    tenant, tour, option, *_ = world
    body = {k: (v.format(option=option.pk) if isinstance(v, str) else v) for k, v in body.items()}
    response = staff_api(tenant, "operations")("post", "/api/v1/departures/", body)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    with tenant_context(tenant):
        assert Departure.objects.count() == 1


def test_sales_cannot_create_departures_but_can_list_them(world):
    tenant, tour, option, departure, *_ = world
    api = staff_api(tenant, "sales")
    assert (
        api(
            "post",
            "/api/v1/departures/",
            {"option": str(option.pk), "starts_local": "2027-07-01T09:00", "capacity": 5},
        ).status_code
        == 403
    )
    listed = api("get", f"/api/v1/departures/?tour={tour.pk}").json()["results"]
    assert [d["id"] for d in listed] == [str(departure.pk)]
    assert api("get", "/api/v1/departures/?from=yesterday").status_code == 400


def test_capacity_cannot_go_below_seats_taken_and_the_error_says_the_minimum(world):
    tenant, _, _, departure, *_ = world
    with tenant_context(tenant):
        Departure.objects.filter(pk=departure.pk).update(sold=6)
    api = staff_api(tenant, "operations")

    refused = api("patch", f"/api/v1/departures/{departure.pk}/", {"capacity": 4})
    changed = api("patch", f"/api/v1/departures/{departure.pk}/", {"capacity": 8, "status": "closed"})

    assert refused.status_code in (400, 409), refused.content
    assert "6" in refused.json()["error"]["message"]
    assert changed.status_code == 200, changed.content
    assert changed.json()["capacity"] == 8 and changed.json()["status"] == "closed"


def test_a_hold_needs_an_idempotency_key_and_a_retry_returns_the_same_hold(world):
    tenant, _, _, departure, *_ = world
    api = staff_api(tenant, "sales")
    body = {"departure": str(departure.pk), "units": {"adult": 2, "infant": 1}}

    missing = api("post", "/api/v1/holds/", body)
    first = api("post", "/api/v1/holds/", body, **{"Idempotency-Key": "k-1"})
    again = api("post", "/api/v1/holds/", body, **{"Idempotency-Key": "k-1"})

    assert missing.status_code == 400 and missing.json()["error"]["code"] == "idempotency_key_required"
    assert first.status_code == 201, first.content
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert first.json()["seats"] == 2  # the infant takes no seat
    with tenant_context(tenant):
        assert Departure.objects.get(pk=departure.pk).held == 2
        assert Hold.objects.count() == 1


def test_a_hold_that_does_not_fit_names_the_seats_left(world):
    tenant, _, _, departure, *_ = world
    api = staff_api(tenant, "sales")
    response = api(
        "post",
        "/api/v1/holds/",
        {"departure": str(departure.pk), "units": {"adult": 11}},
        **{"Idempotency-Key": "big"},
    )
    assert response.status_code in (400, 409), response.content
    assert response.json()["error"]["code"] == "not_enough_seats"
    assert "10" in response.json()["error"]["message"]
    with tenant_context(tenant):
        assert Departure.objects.get(pk=departure.pk).held == 0


def test_a_booker_holds_on_trade_for_their_agency_and_only_sees_their_holds(world):
    tenant, _, _, departure, agency, booker = world
    api = Api(tenant, booker)
    staff = staff_api(tenant, "sales")
    staff(
        "post",
        "/api/v1/holds/",
        {"departure": str(departure.pk), "units": {"adult": 1}},
        **{"Idempotency-Key": "staff-1"},
    )

    created = api(
        "post",
        "/api/v1/holds/",
        {"departure": str(departure.pk), "units": {"adult": 1}},
        **{"Idempotency-Key": "b-1"},
    )

    assert created.status_code == 201, created.content
    assert created.json()["channel"] == "trade" and created.json()["agency"] == str(agency.pk)
    assert [h["id"] for h in api("get", "/api/v1/holds/").json()["results"]] == [created.json()["id"]]
    released = api("post", f"/api/v1/holds/{created.json()['id']}/release/")
    assert released.status_code == 200 and released.json()["status"] == "released"


def test_hold_extend_and_release(world):
    tenant, _, _, departure, *_ = world
    api = staff_api(tenant, "sales")
    hold = api(
        "post",
        "/api/v1/holds/",
        {"departure": str(departure.pk), "units": {"adult": 3}},
        **{"Idempotency-Key": "x"},
    ).json()

    extended = api("post", f"/api/v1/holds/{hold['id']}/extend/", {"seconds": 300})
    bad = api("post", f"/api/v1/holds/{hold['id']}/extend/", {"seconds": 0})
    released = api("post", f"/api/v1/holds/{hold['id']}/release/")
    twice = api("post", f"/api/v1/holds/{hold['id']}/release/")

    assert extended.status_code == 200 and extended.json()["expires_at"] > hold["expires_at"]
    assert bad.status_code == 400 and "seconds" in bad.json()["error"]["fields"]
    assert released.status_code == 200
    assert twice.status_code == 200 and twice.json()["status"] == "released"  # releasing is idempotent
    with tenant_context(tenant):
        assert Departure.objects.get(pk=departure.pk).held == 0


def test_anonymous_and_read_only_cannot_hold(world):
    tenant, _, _, departure, *_ = world
    body = {"departure": str(departure.pk), "units": {"adult": 1}}
    anonymous = Client().post(
        "/api/v1/holds/",
        body,
        content_type="application/json",
        HTTP_HOST=host_of(tenant),
        HTTP_IDEMPOTENCY_KEY="a",
    )
    read_only = staff_api(tenant, "read_only")("post", "/api/v1/holds/", body, **{"Idempotency-Key": "r"})
    assert anonymous.status_code == 401
    assert read_only.status_code == 403


def test_allotments_staff_create_and_bookers_see_their_own(world):
    tenant, _, _, departure, agency, booker = world
    staff = staff_api(tenant, "sales")
    release_at = (timezone.now() + dt.timedelta(days=7)).isoformat()

    created = staff(
        "post",
        "/api/v1/allotments/",
        {"agency": str(agency.pk), "departure": str(departure.pk), "seats": 4, "release_at": release_at},
    )
    too_many = staff(
        "post",
        "/api/v1/allotments/",
        {"agency": str(agency.pk), "departure": str(departure.pk), "seats": 40, "release_at": release_at},
    )

    assert created.status_code == 201, created.content
    assert too_many.status_code in (400, 409)
    booker_api = Api(tenant, booker)
    assert [a["id"] for a in booker_api("get", "/api/v1/allotments/").json()["results"]] == [
        created.json()["id"]
    ]
    assert booker_api("post", f"/api/v1/allotments/{created.json()['id']}/release/").status_code == 403
    with tenant_context(tenant):
        assert Departure.objects.get(pk=departure.pk).allotted == 4
        assert Allotment.objects.count() == 1
