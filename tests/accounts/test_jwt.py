"""JWT for the REST API: issued per tenant, refused elsewhere, rotated, revoked, second factor where needed."""

from __future__ import annotations

import pytest

from tenants.context import tenant_context
from tenants.models import Membership
from tests.accounts.helpers import api_post, bearer, client_for, wrong_code
from tests.factories import PASSWORD, enrol_totp, host_of, make_member, make_tenant, owner_of, totp_now

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token/"
REFRESH = "/api/v1/auth/token/refresh/"
REVOKE = "/api/v1/auth/token/revoke/"
ME = "/api/v1/me/"


def _obtain(client, email, **extra):
    return api_post(client, TOKEN, {"email": email, "password": PASSWORD, **extra})


def _tokens(client, email, **extra) -> dict:
    response = _obtain(client, email, **extra)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def two_tenants():
    tenant_a, tenant_b = make_tenant(), make_tenant()
    return tenant_a, tenant_b, client_for(host_of(tenant_a)), client_for(host_of(tenant_b))


def test_password_only_role_gets_tokens_that_work_on_its_tenant(two_tenants):
    tenant_a, _, on_a, _ = two_tenants
    user = make_member(tenant_a, "sales")

    tokens = _tokens(on_a, user.email)

    assert set(tokens) == {"access", "refresh"}
    me = on_a.get(ME, **bearer(tokens["access"]))
    assert me.status_code == 200
    assert me.json()["email"] == user.email
    assert me.json()["role"] == "sales"


def test_me_without_a_token_is_refused(two_tenants):
    _, _, on_a, _ = two_tenants
    response = on_a.get(ME)
    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] in {"not_authenticated", "permission_denied"}


def test_access_token_is_refused_on_another_tenant_even_for_a_member_there(two_tenants):
    tenant_a, tenant_b, on_a, on_b = two_tenants
    user = make_member(tenant_a, "sales")
    with tenant_context(tenant_b):
        Membership.objects.create(user=user, role="sales")
    tokens = _tokens(on_a, user.email)

    response = on_b.get(ME, **bearer(tokens["access"]))

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "This token was not issued for this site."
    assert on_a.get(ME, **bearer(tokens["access"])).status_code == 200
    assert _obtain(on_b, user.email).status_code == 200  # B issues its own


def test_tampered_access_token_is_refused(two_tenants):
    tenant_a, _, on_a, _ = two_tenants
    user = make_member(tenant_a, "sales")
    access = _tokens(on_a, user.email)["access"]
    header, payload, signature = access.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"

    assert on_a.get(ME, **bearer(tampered)).status_code == 401


def test_access_token_of_a_deactivated_member_is_refused(two_tenants):
    tenant_a, _, on_a, _ = two_tenants
    user = make_member(tenant_a, "sales")
    tokens = _tokens(on_a, user.email)
    with tenant_context(tenant_a):
        Membership.objects.filter(user=user).update(is_active=False)

    refused = on_a.get(ME, **bearer(tokens["access"]))
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "This account has no access to this site."
    assert api_post(on_a, REFRESH, {"refresh": tokens["refresh"]}).status_code == 401
    assert _obtain(on_a, user.email).status_code == 401


def test_access_token_of_a_deactivated_user_is_refused(two_tenants):
    tenant_a, _, on_a, _ = two_tenants
    user = make_member(tenant_a, "sales")
    tokens = _tokens(on_a, user.email)
    user.is_active = False
    user.save(update_fields=["is_active"])

    assert on_a.get(ME, **bearer(tokens["access"])).status_code == 401
    assert api_post(on_a, REFRESH, {"refresh": tokens["refresh"]}).status_code == 401


def test_non_member_cannot_obtain_a_token(two_tenants):
    tenant_a, tenant_b, on_a, _ = two_tenants
    outsider = make_member(tenant_b, "sales")

    response = _obtain(on_a, outsider.email)

    assert response.status_code == 401
    assert "access" not in response.json()


def test_wrong_password_gets_no_token(two_tenants):
    tenant_a, _, on_a, _ = two_tenants
    user = make_member(tenant_a, "sales")

    response = api_post(on_a, TOKEN, {"email": user.email, "password": "wrong password!"})

    assert response.status_code == 401
    assert "access" not in response.json()


def test_token_endpoint_is_not_served_on_the_platform_host():
    tenant = make_tenant()
    user = make_member(tenant, "sales")
    response = _obtain(client_for("platform.localhost"), user.email)
    assert response.status_code == 404


def test_refresh_rotates_and_the_old_refresh_token_is_then_refused(two_tenants):
    tenant_a, _, on_a, _ = two_tenants
    user = make_member(tenant_a, "sales")
    tokens = _tokens(on_a, user.email)

    rotated = api_post(on_a, REFRESH, {"refresh": tokens["refresh"]})

    assert rotated.status_code == 200, rotated.content
    fresh = rotated.json()
    assert set(fresh) == {"access", "refresh"}
    assert fresh["refresh"] != tokens["refresh"]
    assert on_a.get(ME, **bearer(fresh["access"])).status_code == 200
    replay = api_post(on_a, REFRESH, {"refresh": tokens["refresh"]})
    assert replay.status_code == 401
    assert "access" not in replay.json()
    assert api_post(on_a, REFRESH, {"refresh": fresh["refresh"]}).status_code == 200


def test_refresh_token_of_tenant_a_is_refused_on_tenant_b(two_tenants):
    tenant_a, tenant_b, on_a, on_b = two_tenants
    user = make_member(tenant_a, "sales")
    with tenant_context(tenant_b):
        Membership.objects.create(user=user, role="sales")
    tokens = _tokens(on_a, user.email)

    response = api_post(on_b, REFRESH, {"refresh": tokens["refresh"]})

    assert response.status_code == 401
    assert "access" not in response.json()
    assert response.json()["error"]["message"] == "This token was not issued for this site."
    assert api_post(on_b, REVOKE, {"refresh": tokens["refresh"]}).status_code == 401
    # Not burnt by the attempt on B: still good on A.
    assert api_post(on_a, REFRESH, {"refresh": tokens["refresh"]}).status_code == 200


def test_access_token_is_not_accepted_as_a_refresh_token(two_tenants):
    tenant_a, _, on_a, _ = two_tenants
    user = make_member(tenant_a, "sales")
    tokens = _tokens(on_a, user.email)

    assert api_post(on_a, REFRESH, {"refresh": tokens["access"]}).status_code == 401


def test_revoke_blacklists_the_refresh_token(two_tenants):
    tenant_a, _, on_a, _ = two_tenants
    user = make_member(tenant_a, "sales")
    tokens = _tokens(on_a, user.email)

    revoked = api_post(on_a, REVOKE, {"refresh": tokens["refresh"]})

    assert revoked.status_code == 200, revoked.content
    assert api_post(on_a, REFRESH, {"refresh": tokens["refresh"]}).status_code == 401
    assert api_post(on_a, REVOKE, {"refresh": tokens["refresh"]}).status_code == 401


# --- second factor -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "manager", "finance"])
def test_role_needing_mfa_gets_tokens_only_with_a_valid_otp(two_tenants, role):
    tenant_a, _, on_a, _ = two_tenants
    user = owner_of(tenant_a) if role == "owner" else make_member(tenant_a, role)
    device = enrol_totp(user)

    missing = _obtain(on_a, user.email)
    assert missing.status_code == 401
    assert "access" not in missing.json()
    assert 'send the current code as "otp"' in missing.json()["error"]["message"]

    wrong = _obtain(on_a, user.email, otp=wrong_code(device))
    assert wrong.status_code == 401
    assert "access" not in wrong.json()
    assert wrong.json()["error"]["message"] == "The second-factor code is not valid."

    device.refresh_from_db()
    device.throttle_reset()  # the wrong code throttles the device for a second
    tokens = _tokens(on_a, user.email, otp=totp_now(device))
    assert on_a.get(ME, **bearer(tokens["access"])).json()["role"] == role


def test_role_needing_mfa_without_a_device_cannot_get_tokens(two_tenants):
    tenant_a, _, on_a, _ = two_tenants
    owner = owner_of(tenant_a)

    response = _obtain(on_a, owner.email, otp="123456")

    assert response.status_code == 401
    assert "access" not in response.json()


def test_password_only_role_with_a_device_must_send_the_otp(two_tenants):
    tenant_a, _, on_a, _ = two_tenants
    user = make_member(tenant_a, "sales")
    device = enrol_totp(user)

    assert _obtain(on_a, user.email).status_code == 401
    assert _obtain(on_a, user.email, otp=totp_now(device)).status_code == 200


def test_error_codes_of_the_token_endpoint(two_tenants):
    """The API's error codes name the reason, as the serializers and the authentication class intend."""
    tenant_a, tenant_b, on_a, on_b = two_tenants
    user = make_member(tenant_a, "finance")
    device = enrol_totp(user)
    with tenant_context(tenant_b):
        Membership.objects.create(user=user, role="finance")

    assert _obtain(on_a, user.email).json()["error"]["code"] == "mfa_required"
    assert _obtain(on_a, user.email, otp=wrong_code(device)).json()["error"]["code"] == "mfa_invalid"
    device.refresh_from_db()
    device.throttle_reset()
    tokens = _tokens(on_a, user.email, otp=totp_now(device))
    assert on_b.get(ME, **bearer(tokens["access"])).json()["error"]["code"] == "token_wrong_tenant"
    refresh_on_b = api_post(on_b, REFRESH, {"refresh": tokens["refresh"]})
    assert refresh_on_b.json()["error"]["code"] == "token_wrong_tenant"
    with tenant_context(tenant_a):
        Membership.objects.filter(user=user).update(is_active=False)
    assert on_a.get(ME, **bearer(tokens["access"])).json()["error"]["code"] == "no_membership"
