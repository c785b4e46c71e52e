"""Agencies, contracts and bookers over the API: staff by role; a booker sees only its own agency."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from partners.models import Agency, Contract, PartnerUser
from tenants.context import tenant_context
from tenants.models import AuditEvent
from tests.catalogue import make_agency, make_contract
from tests.factories import PASSWORD, enrol_totp, host_of, make_member, make_tenant, obtain_tokens, totp_now

pytestmark = pytest.mark.django_db

AGENCY = {
    "legal_name": "Atlas Voyages SARL",
    "trading_name": "Atlas Voyages",
    "country": "FR",
    "currency": "EUR",
    "email": "resa@atlas.example",
}


class Api:
    def __init__(self, tenant, user, otp_device=None):
        self.client = Client()
        self.host = host_of(tenant)
        otp = totp_now(otp_device) if otp_device else None
        self.auth = f"Bearer {obtain_tokens(self.client, tenant, user, otp=otp)['access']}"

    def __call__(self, method: str, path: str, data=None):
        return getattr(self.client, method)(
            path, data, content_type="application/json", HTTP_HOST=self.host, HTTP_AUTHORIZATION=self.auth
        )


def _staff(tenant, role="sales"):
    user = make_member(tenant, role)
    return Api(tenant, user, enrol_totp(user) if role in ("owner", "manager", "finance") else None)


def _booker(tenant, agency, email="booker@agency.example"):
    from accounts.models import User

    user = User.objects.create_user(email, PASSWORD)
    with tenant_context(tenant):
        PartnerUser.objects.create(user=user, agency=agency)
    return user


def test_sales_creates_an_agency_and_it_is_audited():
    tenant = make_tenant()
    api = _staff(tenant)

    response = api("post", "/api/v1/agencies/", AGENCY)

    assert response.status_code == 201, response.content
    with tenant_context(tenant):
        agency = Agency.objects.get(legal_name="Atlas Voyages SARL")
        assert AuditEvent.objects.filter(action="create", target_id=str(agency.pk)).exists()
    assert response.json()["id"] == str(agency.pk)


@pytest.mark.parametrize(
    ("field", "value"),
    [("country", "France"), ("currency", "EURO"), ("email", "not-an-email"), ("legal_name", "")],
)
def test_bad_agency_input_is_a_field_error_and_creates_nothing(field, value):
    tenant = make_tenant()
    response = _staff(tenant)("post", "/api/v1/agencies/", {**AGENCY, field: value})

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    with tenant_context(tenant):
        assert not Agency.objects.exists()


def test_duplicate_legal_name_is_a_conflict():
    tenant = make_tenant()
    api = _staff(tenant)
    assert api("post", "/api/v1/agencies/", AGENCY).status_code == 201

    response = api("post", "/api/v1/agencies/", {**AGENCY, "legal_name": "atlas voyages sarl"})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "agency_exists"


@pytest.mark.parametrize("role", ["read_only", "operations"])
def test_roles_without_partner_rights_cannot_create_agencies(role):
    tenant = make_tenant()
    response = _staff(tenant, role)("post", "/api/v1/agencies/", AGENCY)
    assert response.status_code == 403
    with tenant_context(tenant):
        assert not Agency.objects.exists()


def test_contracts_may_not_overlap():
    tenant = make_tenant()
    with tenant_context(tenant):
        agency = make_agency()
        make_contract(agency, valid_from="2026-01-01", valid_to="2026-12-31")
    api = _staff(tenant)
    body = {
        "agency": str(agency.pk),
        "model": "commission",
        "commission_percent": "15.00",
        "credit_limit": 100000,
    }

    overlapping = api("post", "/api/v1/contracts/", {**body, "valid_from": "2026-06-01"})
    following = api("post", "/api/v1/contracts/", {**body, "valid_from": "2027-01-01"})

    assert overlapping.status_code == 409, overlapping.content
    assert overlapping.status_code == 409 and overlapping.json()["error"]["code"] == "contract_overlap"
    assert following.status_code == 201, following.content
    assert following.json()["currency"] == "EUR"
    with tenant_context(tenant):
        assert Contract.objects.count() == 2


def test_contract_bad_values_are_field_errors():
    tenant = make_tenant()
    with tenant_context(tenant):
        agency = make_agency()
    api = _staff(tenant)
    base = {"agency": str(agency.pk), "model": "net", "valid_from": "2026-01-01"}

    for field, value in [("commission_percent", "120"), ("credit_limit", -5), ("valid_to", "2025-01-01")]:
        response = api("post", "/api/v1/contracts/", {**base, field: value})
        assert response.status_code == 400, (field, response.content)
        assert response.json()["error"]["fields"], response.content
    with tenant_context(tenant):
        assert not Contract.objects.exists()


def test_staff_adds_a_booker_who_then_uses_the_api_for_their_agency_only(django_capture_on_commit_callbacks):
    tenant = make_tenant()
    with tenant_context(tenant):
        mine, other = make_agency("Mine Ltd"), make_agency("Other Ltd")
    staff = _staff(tenant)

    with django_capture_on_commit_callbacks(execute=True):
        added = staff("post", "/api/v1/partner-users/", {"agency": str(mine.pk), "email": "Jo@Mine.example"})

    assert added.status_code == 201, added.content
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["jo@mine.example"]
    assert "Mine Ltd" in mail.outbox[0].subject
    link = re.search(r"http://[^/]+(/accounts/password/set/\S+/)", mail.outbox[0].body).group(1)
    newcomer = Client(HTTP_HOST=host_of(tenant))
    form = newcomer.get(link, follow=True)
    chosen = newcomer.post(form.request["PATH_INFO"], {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert chosen.status_code == 302
    from accounts.models import User

    booker = User.objects.get(email="jo@mine.example")
    api = Api(tenant, booker)
    me = api("get", "/api/v1/me/").json()
    assert me["role"] is None and me["agency"]["id"] == str(mine.pk)
    agencies = api("get", "/api/v1/agencies/").json()["results"]
    assert [a["id"] for a in agencies] == [str(mine.pk)]
    assert api("get", f"/api/v1/agencies/{other.pk}/").status_code == 404
    assert api("post", "/api/v1/agencies/", AGENCY).status_code == 403
    assert api("patch", f"/api/v1/agencies/{mine.pk}/", {"status": "active"}).status_code == 403
    assert api("get", "/api/v1/contracts/").status_code == 403
    assert api("get", "/api/v1/memberships/").status_code == 403


def test_a_booker_cannot_sign_in_to_the_back_office_or_use_another_tenant():
    tenant, elsewhere = make_tenant(), make_tenant()
    with tenant_context(tenant):
        agency = make_agency()
    booker = _booker(tenant, agency)
    client = Client()

    login = client.post(
        "/accounts/login/", {"email": booker.email, "password": PASSWORD}, HTTP_HOST=host_of(tenant)
    )
    assert login.status_code == 400  # the back office is for staff
    assert client.get("/admin/", HTTP_HOST=host_of(tenant)).status_code == 302
    refused = client.post(
        "/api/v1/auth/token/",
        {"email": booker.email, "password": PASSWORD},
        content_type="application/json",
        HTTP_HOST=host_of(elsewhere),
    )
    assert refused.status_code == 401


def test_a_closed_agency_or_deactivated_booker_loses_access():
    tenant = make_tenant()
    with tenant_context(tenant):
        agency = make_agency()
    booker = _booker(tenant, agency)
    api = Api(tenant, booker)
    assert api("get", "/api/v1/me/").status_code == 200

    staff = _staff(tenant)
    with tenant_context(tenant):
        partner_user = PartnerUser.objects.get(user=booker)
    assert staff("post", f"/api/v1/partner-users/{partner_user.pk}/deactivate/").status_code == 200
    assert api("get", "/api/v1/me/").status_code == 401

    with tenant_context(tenant):
        PartnerUser.objects.filter(pk=partner_user.pk).update(is_active=True)
        Agency.objects.filter(pk=agency.pk).update(status=Agency.Status.CLOSED)
    assert api("get", "/api/v1/me/").status_code == 401


def test_a_staff_member_cannot_also_be_a_booker():
    tenant = make_tenant()
    with tenant_context(tenant):
        agency = make_agency()
    member = make_member(tenant, "read_only", email="both@example.com")
    response = _staff(tenant)(
        "post", "/api/v1/partner-users/", {"agency": str(agency.pk), "email": member.email}
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "already_member"
