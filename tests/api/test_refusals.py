"""Requests that are refused change nothing, and edge inputs get a clear 400 (found in review)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from inventory import services, tasks
from inventory.models import Allotment, Departure, Hold
from partners.models import Contract
from tenants.context import tenant_context
from tests.api.conftest import Api, staff_api
from tests.catalogue import (
    make_agency,
    make_contract,
    make_departure,
    make_option,
    make_tour,
    make_unit_types,
)
from tests.factories import host_of, make_tenant
from tours.models import Tour

pytestmark = pytest.mark.django_db


def test_a_refused_change_leaves_the_earlier_part_of_the_same_request_undone(world):
    tenant, _, _, departure, *_ = world
    with tenant_context(tenant):
        Departure.objects.filter(pk=departure.pk).update(sold=1)

    response = staff_api(tenant, "operations")(
        "patch", f"/api/v1/departures/{departure.pk}/", {"capacity": 7, "status": "cancelled"}
    )

    assert response.status_code == 409, response.content
    with tenant_context(tenant):
        fresh = Departure.objects.get(pk=departure.pk)
    assert (fresh.capacity, fresh.status) == (10, "open")


def test_a_start_time_with_an_offset_is_refused(world):
    tenant, _, option, *_ = world
    response = staff_api(tenant, "operations")(
        "post",
        "/api/v1/departures/",
        {"option": str(option.pk), "starts_local": "2027-07-01T09:00+05:00", "capacity": 5},
    )
    assert response.status_code == 400 and "starts_local" in response.json()["error"]["fields"]


def test_an_allotment_released_in_the_past_is_refused(world):
    tenant, _, _, departure, agency, _ = world
    response = staff_api(tenant, "sales")(
        "post",
        "/api/v1/allotments/",
        {
            "agency": str(agency.pk),
            "departure": str(departure.pk),
            "seats": 2,
            "release_at": "2020-01-01T00:00:00Z",
        },
    )
    assert response.status_code == 400 and "release_at" in response.json()["error"]["fields"]
    with tenant_context(tenant):
        assert Departure.objects.get(pk=departure.pk).allotted == 0


def test_a_contract_stays_with_its_agency(world):
    tenant, *_, agency, _ = world
    with tenant_context(tenant):
        other = make_agency("Other")
        contract = Contract.objects.get(agency=agency)
    response = staff_api(tenant, "sales")(
        "patch", f"/api/v1/contracts/{contract.pk}/", {"agency": str(other.pk)}
    )
    assert response.status_code == 400 and "agency" in response.json()["error"]["fields"]


def test_drafts_are_not_on_sale_to_travellers_or_agencies_but_staff_may_price_them(world):
    tenant, tour, _, departure, _, booker = world
    with tenant_context(tenant):
        Tour.objects.filter(pk=tour.pk).update(status=Tour.Status.DRAFT)
    body = {"departure": str(departure.pk), "units": {"adult": 1}}

    anonymous = Client().post(
        "/api/v1/quotes/", body, content_type="application/json", HTTP_HOST=host_of(tenant)
    )
    held = Api(tenant, booker)("post", "/api/v1/holds/", body, **{"Idempotency-Key": "draft"})
    staff = staff_api(tenant, "sales")("post", "/api/v1/holds/", body, **{"Idempotency-Key": "staff-draft"})

    assert anonymous.status_code == 400 and anonymous.json()["error"]["code"] == "not_on_sale"
    assert held.status_code == 400 and held.json()["error"]["code"] == "not_on_sale"
    assert staff.status_code == 201
    with tenant_context(tenant):
        assert Hold.objects.count() == 1


@pytest.mark.parametrize("query", ["from=9999-12-20", "from=2026-01-01&to=9999-12-31", "from=0001-01-01"])
def test_availability_dates_out_of_range_are_field_errors(world, query):
    tenant, tour, *_ = world
    response = Client().get(f"/api/v1/tours/{tour.slug}/availability/?{query}", HTTP_HOST=host_of(tenant))
    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"]


def test_an_agency_booker_can_ask_for_a_new_password(world):
    tenant, *_, booker = world
    response = Client().post("/accounts/password/reset/", {"email": booker.email}, HTTP_HOST=host_of(tenant))
    assert response.status_code == 302
    assert [message.to for message in mail.outbox] == [[booker.email]]


def test_seats_of_a_lapsed_allotment_are_sold_before_the_beat_task_releases_them():
    tenant = make_tenant()
    with tenant_context(tenant):
        tour = make_tour()
        option = make_option(tour)
        make_unit_types(tour)
        departure = make_departure(option, capacity=4)
        agency = make_agency()
        make_contract(agency)
        allotment = services.create_allotment(agency, departure, 4, timezone.now() + dt.timedelta(hours=1))
        Allotment.objects.filter(pk=allotment.pk).update(release_at=timezone.now() - dt.timedelta(minutes=1))

        hold = services.place_hold(
            Departure.objects.get(pk=departure.pk), {"adult": 3}, "retail", "after-lapse"
        )

        assert hold.seats == 3
        fresh = Departure.objects.get(pk=departure.pk)
        assert (fresh.allotted, fresh.held) == (0, 3)
        assert Allotment.objects.get(pk=allotment.pk).status == Allotment.Status.RELEASED
        agency_hold = services.place_hold(fresh, {"adult": 1}, "trade", "agency-after-lapse", agency=agency)
        assert agency_hold.seats_from_allotment == 0  # the lapsed block is not the agency's any more


def test_one_failing_tenant_does_not_stop_the_sweep_for_the_others(monkeypatch):
    first, second = make_tenant(), make_tenant()
    seen = []

    def expire(limit):
        from tenants.context import current_tenant_id

        seen.append(current_tenant_id())
        if len(seen) == 1:
            raise RuntimeError("deadlock detected")
        return 0

    monkeypatch.setattr(tasks, "expire_holds", expire)

    tasks.sweep_expired_holds()

    assert {first.pk, second.pk} <= set(seen)
    assert len(seen) >= 2
