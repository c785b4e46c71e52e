from __future__ import annotations

import pytest
from django.test import Client

from tenants.models import Tenant
from tests.factories import PASSWORD, enrol_totp, host_of, make_tenant, owner_of, totp_now


@pytest.fixture
def tenants(db) -> tuple[Tenant, Tenant]:
    """Two tenants, slugs "a" (the victim) and "b" (the attacker), each with its owner."""
    return make_tenant("a"), make_tenant("b")


def sign_in_owner(client: Client, tenant: Tenant):
    """Sign the tenant's owner in to the back office of its host through the real views: password at
    /accounts/login/, then the current TOTP code at /accounts/verify/."""
    host = host_of(tenant)
    owner = owner_of(tenant)
    device = enrol_totp(owner)
    response = client.post(
        "/accounts/login/", {"email": owner.email, "password": PASSWORD, "next": "/admin/"}, HTTP_HOST=host
    )
    assert response.status_code == 302, response.content[:300]
    assert response["Location"].startswith("/accounts/verify/"), response["Location"]
    assert client.get("/admin/", HTTP_HOST=host).status_code == 302  # password alone is not enough
    response = client.post(
        "/accounts/verify/", {"token": totp_now(device), "next": "/admin/"}, HTTP_HOST=host
    )
    assert response.status_code == 302, response.content[:300]
    assert response["Location"] == "/admin/"
    assert client.get("/admin/", HTTP_HOST=host).status_code == 200
    return owner
