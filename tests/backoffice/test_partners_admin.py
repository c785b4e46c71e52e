"""Partner agencies through the back office: written by partners.services, audited, by role."""

from __future__ import annotations

from accounts.models import User
from partners.models import Agency, Contract, PartnerUser
from tenants.context import tenant_context
from tenants.models import AuditEvent
from tests.backoffice.conftest import form_errors, inline_data
from tests.catalogue import make_agency, make_contract

AGENCIES = "/admin/partners/agency/"

AGENCY = {
    "legal_name": "Voyages Lumière SARL",
    "trading_name": "Lumière",
    "country": "FR",
    "currency": "EUR",
    "email": "resa@lumiere.example",
    "status": "active",
}


def test_sales_adds_an_agency_with_contract_contact_and_booker(tenant, staff):
    client = staff("sales")
    page = client.get(f"{AGENCIES}add/")
    data = AGENCY | inline_data(
        page,
        {
            "contacts": [{"name": "Camille Roux", "email": "camille@lumiere.example"}],
            "contracts": [
                {
                    "model": "commission",
                    "commission_percent": "12.5",
                    "payment_terms_days": "30",
                    "credit_limit": "2500000",
                    "valid_from": "2026-01-01",
                }
            ],
            "users": [{"email": "Booker@Lumiere.example", "full_name": "Booker", "is_active": "on"}],
        },
    )

    response = client.post(f"{AGENCIES}add/", data)

    assert response.status_code == 302, form_errors(response)
    with tenant_context(tenant):
        agency = Agency.objects.get()
        contract = Contract.objects.get(agency=agency)
        booker = PartnerUser.objects.select_related("user").get(agency=agency)
        audited = set(AuditEvent.objects.values_list("target_type", flat=True))
        assert agency.contacts.get().name == "Camille Roux"
    assert agency.legal_name == "Voyages Lumière SARL"
    assert (contract.credit_limit, str(contract.commission_percent)) == (2_500_000, "12.50")
    assert booker.user.email.lower() == "booker@lumiere.example" and booker.is_active
    assert {
        "partners.agency",
        "partners.contract",
        "partners.partneruser",
        "partners.agencycontact",
    } <= audited


def test_overlapping_contract_is_shown_on_the_form_and_nothing_is_saved(tenant, staff):
    with tenant_context(tenant):
        agency = make_agency("Atlas Travel Ltd")
        make_contract(agency, valid_from="2026-01-01")
    client = staff("sales")
    data = {
        "agency": agency.pk,
        "model": "net",
        "commission_percent": "0",
        "payment_terms_days": "14",
        "credit_limit": "100",
        "valid_from": "2026-06-01",
        "notes": "second",
    }

    response = client.post("/admin/partners/contract/add/", data)

    assert response.status_code == 200
    assert "in force in that period" in form_errors(response)
    assert b"second" in response.content  # the input is kept
    with tenant_context(tenant):
        assert Contract.objects.filter(agency=agency).count() == 1
        assert not AuditEvent.objects.filter(target_type="partners.contract").exists()


def test_booker_is_named_by_email_not_picked_from_all_users(tenant, staff):
    User.objects.create_user("someone@elsewhere.example", "x" * 20)
    client = staff("sales")
    page = client.get(f"{AGENCIES}add/").content.decode()
    assert "someone@elsewhere.example" not in page
    assert 'name="users-__prefix__-email"' in page


def test_operations_may_view_agencies_but_not_add_them(tenant, staff):
    client = staff("operations")
    assert client.get(AGENCIES).status_code == 200
    page = client.get(f"{AGENCIES}add/")
    assert page.status_code == 403
    response = client.post(f"{AGENCIES}add/", AGENCY)
    assert response.status_code == 403
    with tenant_context(tenant):
        assert not Agency.objects.exists()


def test_duplicate_legal_name_is_a_form_error(tenant, staff):
    with tenant_context(tenant):
        make_agency("Voyages Lumière SARL")
    client = staff("sales")
    page = client.get(f"{AGENCIES}add/")
    response = client.post(f"{AGENCIES}add/", AGENCY | inline_data(page))
    assert response.status_code == 200
    assert form_errors(response)
    with tenant_context(tenant):
        assert Agency.objects.count() == 1


def test_currency_of_an_agency_with_a_contract_is_locked(tenant, staff):
    with tenant_context(tenant):
        agency = make_agency("Voyages Lumière SARL", currency="EUR")
        contract = make_contract(agency, valid_from="2026-01-01")
    client = staff("sales")
    data = AGENCY | {
        "currency": "GBP",
        "contacts-TOTAL_FORMS": "0",
        "contacts-INITIAL_FORMS": "0",
        "users-TOTAL_FORMS": "0",
        "users-INITIAL_FORMS": "0",
        "contracts-TOTAL_FORMS": "1",
        "contracts-INITIAL_FORMS": "1",
        "contracts-0-id": contract.pk,
        "contracts-0-agency": agency.pk,
        "contracts-0-model": contract.model,
        "contracts-0-commission_percent": "0",
        "contracts-0-payment_terms_days": "30",
        "contracts-0-credit_limit": str(contract.credit_limit),
        "contracts-0-valid_from": "2026-01-01",
    }

    response = client.post(f"{AGENCIES}{agency.pk}/change/", data)

    assert response.status_code == 200
    assert "Locked by existing contracts" in form_errors(response)
    with tenant_context(tenant):
        fresh = Agency.objects.get(pk=agency.pk)
    assert (fresh.currency, fresh.trading_name) == ("EUR", "")  # the other changed fields rolled back too
