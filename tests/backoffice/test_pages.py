"""Every catalogue, partner and inventory page of the back office opens, with rows in it, for the owner."""

from __future__ import annotations

import pytest

from inventory import services
from tenants.admin_sites import tenant_admin_site
from tenants.context import tenant_context
from tests.catalogue import make_agency, make_contract, make_price_list, make_unit_types

APPS = {"tours", "partners", "inventory"}
MODELS = sorted(
    (model for model in tenant_admin_site._registry if model._meta.app_label in APPS),
    key=lambda m: m._meta.label,
)
# Rows that only services and the system write: shown, never added by hand.
VIEW_ONLY = {"inventory.Hold", "tours.PromoRedemption", "partners.PartnerUser"}


@pytest.fixture
def owner_client(tenant, staff, catalogue):
    with tenant_context(tenant):
        option, departure = catalogue["option"], catalogue["departure"]
        units = {unit.code: unit for unit in option.tour.unit_types.all()} or make_unit_types(option.tour)
        make_price_list(option, units, {"adult": 5000, "child": 2500})
        agency = make_agency("Pages Travel Ltd")
        make_contract(agency)
        services.create_allotment(agency, departure, 2, departure.starts_at)
        services.place_hold(departure, {"adult": 1}, "retail", "pages-hold")
    return staff("owner")


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_list_add_and_change_pages_open(model, owner_client, tenant):
    base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    response = owner_client.get(base)
    assert response.status_code == 200
    add = owner_client.get(f"{base}add/")
    assert add.status_code == (403 if model._meta.label in VIEW_ONLY else 200)
    with tenant_context(tenant):
        row = model.objects.first()
    if row is not None:
        assert owner_client.get(f"{base}{row.pk}/change/").status_code == 200
        assert owner_client.get(base, {"q": "x"}).status_code == 200


def test_all_catalogue_models_with_pages_are_registered():
    labels = {model._meta.label for model in MODELS}
    assert {
        "tours.Tour",
        "tours.Destination",
        "tours.Category",
        "tours.TaxRate",
        "tours.PriceList",
        "tours.PromoCode",
        "partners.Agency",
        "inventory.Schedule",
        "inventory.Departure",
        "inventory.Closure",
        "inventory.Allotment",
        "inventory.Hold",
    } <= labels
