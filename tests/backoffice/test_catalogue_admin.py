"""Tours, pricing and promo codes through the back office, by role."""

from __future__ import annotations

import pytest

from tenants.context import tenant_context
from tenants.models import AuditEvent
from tests.backoffice.conftest import form_errors, inline_data
from tests.catalogue import make_option, make_tour, make_unit_types
from tours.models import Option, PriceList, PromoCode, Rate, Tour, TourTranslation

TOURS = "/admin/tours/tour/"


def _tour_fields(**overrides) -> dict:
    fields = {
        "title": "Atlas walk",
        "slug": "atlas-walk",
        "status": "draft",
        "summary": "Villages of the High Atlas.",
        "description": '<p>Mint tea <script>alert("x")</script><a href="javascript:evil()">here</a></p>',
        "duration_minutes": "480",
        "difficulty": "moderate",
        "languages": "en,fr",
        "time_zone": "Africa/Casablanca",
    }
    fields.update(overrides)
    return fields


def test_operations_adds_a_tour_with_inlines_and_the_description_is_sanitised(tenant, staff):
    client = staff("operations")
    page = client.get(f"{TOURS}add/")
    assert page.status_code == 200
    data = _tour_fields() | inline_data(
        page,
        {
            "options": [
                {"code": "shared", "name": "Shared group", "min_participants": "1", "is_active": "on"}
            ],
            "translations": [
                {
                    "language": "fr",
                    "title": "Randonnée",
                    "description": '<p onclick="x">Thé <em>menthe</em></p>',
                }
            ],
            "cancellation_tiers": [{"days_before": "7", "refund_percent": "100"}],
        },
    )

    response = client.post(f"{TOURS}add/", data)

    assert response.status_code == 302, form_errors(response)
    with tenant_context(tenant):
        tour = Tour.objects.get(slug="atlas-walk")
        assert tour.description == '<p>Mint tea <a rel="noopener noreferrer nofollow">here</a></p>'
        assert tour.languages == ["en", "fr"]
        assert Option.objects.get(tour=tour).name == "Shared group"
        assert TourTranslation.objects.get(tour=tour).description == "<p>Thé <em>menthe</em></p>"
        assert tour.cancellation_tiers.get().refund_percent == 100
        audited = set(AuditEvent.objects.values_list("target_type", "action"))
    assert {
        ("tours.tour", "create"),
        ("tours.option", "create"),
        ("tours.tourtranslation", "create"),
    } <= audited


def test_bad_time_zone_is_a_form_error_and_nothing_is_created(tenant, staff):
    client = staff("operations")
    page = client.get(f"{TOURS}add/")
    response = client.post(f"{TOURS}add/", _tour_fields(time_zone="Mars/Olympus") | inline_data(page))
    assert response.status_code == 200
    assert "IANA time zone" in form_errors(response)
    with tenant_context(tenant):
        assert not Tour.objects.exists()


@pytest.mark.parametrize("role", ["sales", "read_only", "finance"])
def test_roles_without_tour_rights_can_look_but_not_change(tenant, staff, catalogue, role):
    client = staff(role)
    tour = catalogue["tour"]
    assert client.get(TOURS).status_code == 200
    assert client.get(f"{TOURS}add/").status_code == 403
    page = client.get(f"{TOURS}{tour.pk}/change/")
    assert page.status_code == 200
    assert b'name="title"' not in page.content  # a view page, not a form

    response = client.post(f"{TOURS}{tour.pk}/change/", _tour_fields(title="Hijacked"))

    assert response.status_code == 403
    with tenant_context(tenant):
        assert Tour.objects.get(pk=tour.pk).title == "Fjord cruise"


def test_tour_list_filters_and_search(tenant, staff):
    with tenant_context(tenant):
        make_tour("Desert night", status=Tour.Status.DRAFT)
        make_tour("Glacier hike", status=Tour.Status.PUBLISHED)
    client = staff("read_only")

    drafts = client.get(TOURS, {"status__exact": "draft"}).content.decode()
    assert "Desert night" in drafts and "Glacier hike" not in drafts
    found = client.get(TOURS, {"q": "glacier"}).content.decode()
    assert "Glacier hike" in found and "Desert night" not in found


def test_price_list_rate_must_pair_option_and_unit_type_of_one_tour(tenant, staff):
    with tenant_context(tenant):
        first, second = make_tour("First"), make_tour("Second")
        option = make_option(first)
        other_adult = make_unit_types(second)["adult"]
        own_adult = make_unit_types(first)["adult"]
    client = staff("operations")
    page = client.get("/admin/tours/pricelist/add/")
    fields = {
        "name": "Retail EUR",
        "channel": "retail",
        "currency": "EUR",
        "priority": "0",
        "is_active": "on",
    }

    def rates(unit_type):
        return inline_data(
            page, {"rates": [{"option": option.pk, "unit_type": unit_type.pk, "amount": "4500"}]}
        )

    response = client.post("/admin/tours/pricelist/add/", fields | rates(other_adult))
    assert response.status_code == 200
    assert b"belongs to another tour" in response.content
    with tenant_context(tenant):
        assert not PriceList.objects.exists()

    response = client.post("/admin/tours/pricelist/add/", fields | rates(own_adult))
    assert response.status_code == 302
    with tenant_context(tenant):
        assert Rate.objects.get().amount == 4500


def test_promo_code_admin_checks_the_value_and_never_edits_times_used(tenant, staff):
    client = staff("owner")
    base = {"code": " summer10 ", "kind": "percent", "channel": "", "is_active": "on", "times_used": "99"}

    response = client.post("/admin/tours/promocode/add/", base)
    assert response.status_code == 200
    assert "needs a percentage" in form_errors(response)
    with tenant_context(tenant):
        assert not PromoCode.objects.exists()

    response = client.post("/admin/tours/promocode/add/", base | {"percent": "10"})
    assert response.status_code == 302
    with tenant_context(tenant):
        promo = PromoCode.objects.get()
    assert (promo.code, promo.times_used) == ("SUMMER10", 0)
    page = client.get(f"/admin/tours/promocode/{promo.pk}/change/").content.decode()
    assert 'name="times_used"' not in page and "Times used" in page


def test_tour_list_links_each_tour_to_its_capacity_calendar(tenant, staff, catalogue):
    page = staff("operations").get(TOURS).content.decode()
    assert f"/admin/inventory/departure/calendar/{catalogue['tour'].pk}/" in page
