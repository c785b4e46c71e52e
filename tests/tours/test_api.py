"""The public catalogue and quotes over the API."""

from __future__ import annotations

import pytest
from django.test import Client

from partners.models import PartnerUser
from tenants.context import tenant_context
from tests.catalogue import (
    make_agency,
    make_contract,
    make_departure,
    make_option,
    make_price_list,
    make_tour,
    make_unit_types,
)
from tests.factories import PASSWORD, host_of, make_member, make_tenant, obtain_tokens
from tours.models import Channel, ItineraryDay, Tour, TourTranslation

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    tenant = make_tenant()
    with tenant_context(tenant):
        tour = make_tour(
            "Desert Sunrise", slug="desert-sunrise", description="<p>Dunes</p>", inclusions="Tea\nGuide"
        )
        TourTranslation.objects.create(
            tour=tour, language="fr", title="Lever de soleil", summary="Une journée."
        )
        ItineraryDay.objects.create(tour=tour, day=1, title="Dunes")
        option = make_option(tour)
        units = make_unit_types(tour)
        make_price_list(option, units, {"adult": 5000, "child": 2500, "infant": 0})
        make_price_list(option, units, {"adult": 4000, "child": 2000, "infant": 0}, channel=Channel.TRADE)
        departure = make_departure(option, capacity=20)
        make_tour("Hidden draft", status=Tour.Status.DRAFT)
    return tenant, tour, departure


def _get(tenant, path, **extra):
    return Client().get(path, HTTP_HOST=host_of(tenant), **extra)


def _quote(tenant, body, auth=None):
    extra = {"HTTP_AUTHORIZATION": f"Bearer {auth}"} if auth else {}
    return Client().post(
        "/api/v1/quotes/", body, content_type="application/json", HTTP_HOST=host_of(tenant), **extra
    )


def test_catalogue_lists_published_tours_only_without_signing_in(shop):
    tenant, tour, _ = shop
    response = _get(tenant, "/api/v1/tours/")
    assert response.status_code == 200
    assert [t["slug"] for t in response.json()["results"]] == ["desert-sunrise"]


def test_tour_detail_in_a_translation_and_in_the_tours_own_language(shop):
    tenant, tour, _ = shop
    french = _get(tenant, "/api/v1/tours/desert-sunrise/?lang=fr").json()
    own = _get(tenant, "/api/v1/tours/desert-sunrise/").json()

    assert french["title"] == "Lever de soleil" and french["language"] == "fr"
    assert french["description"] == "<p>Dunes</p>"  # not translated: the tour's own text
    assert own["title"] == "Desert Sunrise" and own["language"] == "en"
    assert own["inclusions"] == ["Tea", "Guide"]
    assert [u["code"] for u in own["unit_types"]] == ["adult", "child", "infant"]
    assert own["options"][0]["code"] == "shared" and own["itinerary"][0]["title"] == "Dunes"
    assert _get(tenant, "/api/v1/tours/hidden-draft/").status_code == 404


def test_another_tenants_tour_is_not_found(shop):
    tenant, *_ = shop
    other = make_tenant()
    assert _get(other, "/api/v1/tours/desert-sunrise/").status_code == 404


def test_a_traveller_gets_a_retail_quote(shop):
    tenant, _, departure = shop
    response = _quote(tenant, {"departure": str(departure.pk), "units": {"adult": 2, "child": 1}})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["currency"] == "EUR"
    assert body["total"] == 12500  # 2 × 50.00 + 25.00, minor units
    assert [line["code"] for line in body["lines"] if line["kind"] == "unit"] == ["adult", "child"]


def test_a_booker_gets_the_trade_price_of_their_agency(shop):
    tenant, _, departure = shop
    from accounts.models import User

    with tenant_context(tenant):
        agency = make_agency()
        make_contract(agency)
        booker = User.objects.create_user("booker@agency.example", PASSWORD)
        PartnerUser.objects.create(user=booker, agency=agency)
    access = obtain_tokens(Client(), tenant, booker)["access"]

    response = _quote(tenant, {"departure": str(departure.pk), "units": {"adult": 2}}, auth=access)

    assert response.status_code == 200, response.content
    assert response.json()["channel"] == "trade"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"units": {"adult": 1}}, "departure"),
        ({"departure": "not-a-uuid", "units": {"adult": 1}}, "departure"),
        ({"departure": "{departure}", "units": {"adult": -1}}, "units"),
        ({"departure": "{departure}", "units": {}}, "units"),
        ({"departure": "{departure}", "units": "two adults"}, "units"),
        ({"departure": "{departure}", "units": {"adult": 1}, "currency": "EURO"}, "currency"),
    ],
)
def test_bad_quote_requests_are_field_errors(shop, body, field):
    tenant, _, departure = shop
    body = {
        key: (value.format(departure=departure.pk) if isinstance(value, str) else value)
        for key, value in body.items()
    }
    response = _quote(tenant, body)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"], response.content


def test_domain_errors_of_the_quote_keep_their_code(shop):
    tenant, _, departure = shop
    response = _quote(tenant, {"departure": str(departure.pk), "units": {"pensioner": 1}})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_unit"


def test_anonymous_cannot_ask_for_trade_prices(shop):
    tenant, _, departure = shop
    response = _quote(tenant, {"departure": str(departure.pk), "units": {"adult": 1}, "channel": "trade"})
    assert response.status_code in (400, 403)
    assert response.json()["error"]["code"] == "permission_denied"


def test_staff_quote_for_an_agency_on_trade(shop):
    tenant, _, departure = shop
    with tenant_context(tenant):
        agency = make_agency()
        make_contract(agency)
    staff = make_member(tenant, "sales")
    access = obtain_tokens(Client(), tenant, staff)["access"]

    missing_agency = _quote(
        tenant, {"departure": str(departure.pk), "units": {"adult": 1}, "channel": "trade"}, access
    )
    priced = _quote(
        tenant, {"departure": str(departure.pk), "units": {"adult": 1}, "agency": str(agency.pk)}, access
    )

    assert missing_agency.status_code == 400 and missing_agency.json()["error"]["code"] == "agency_required"
    assert priced.status_code == 200 and priced.json()["channel"] == "trade"
