"""Second factor by role, enrolment, recovery codes, and the platform host."""

from __future__ import annotations

import base64

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import mfa
from accounts.models import User
from tenants.context import tenant_context
from tenants.models import AuditEvent, Membership
from tests.accounts.helpers import (
    PLATFORM_HOST,
    admin_reachable,
    after_password,
    client_for,
    password_login,
    wrong_code,
)
from tests.factories import PASSWORD, enrol_totp, host_of, make_member, make_tenant, owner_of, totp_now

pytestmark = pytest.mark.django_db

MFA_ROLES = ["owner", "manager", "finance"]
PASSWORD_ONLY_ROLES = ["sales", "operations", "read_only"]


def _member(tenant, role):
    return owner_of(tenant) if role == "owner" else make_member(tenant, role)


@pytest.mark.parametrize("role", MFA_ROLES)
def test_role_needing_mfa_without_device_is_sent_to_enrolment_and_kept_out(role):
    tenant = make_tenant()
    user = _member(tenant, role)
    client = client_for(host_of(tenant))

    response = after_password(client, user)

    assert response.status_code == 302
    assert response["Location"] == "/accounts/mfa/setup/?next=%2Fadmin%2F"
    assert not admin_reachable(client)
    assert client.get("/admin/tenants/auditevent/").status_code == 302
    assert client.get("/accounts/verify/")["Location"].startswith("/accounts/mfa/setup/")


@pytest.mark.parametrize("role", PASSWORD_ONLY_ROLES)
def test_role_without_mfa_requirement_reaches_back_office_with_password_alone(role):
    tenant = make_tenant()
    user = make_member(tenant, role)
    client = client_for(host_of(tenant))

    response = after_password(client, user)

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert admin_reachable(client)


@pytest.mark.parametrize(
    ("role", "with_device", "expected"),
    [
        ("owner", False, "/accounts/mfa/setup/?next=%2Fadmin%2F"),
        ("finance", False, "/accounts/mfa/setup/?next=%2Fadmin%2F"),
        ("sales", False, "/admin/"),
        ("read_only", True, "/accounts/verify/?next=%2Fadmin%2F"),
    ],
)
def test_sign_in_page_sends_an_already_authenticated_user_to_the_same_next_step(role, with_device, expected):
    """GET /accounts/login/ with a password-authenticated session (e.g. a bookmark) resumes the sign-in."""
    tenant = make_tenant()
    user = _member(tenant, role)
    if with_device:
        enrol_totp(user)
    client = client_for(host_of(tenant))
    assert after_password(client, user)["Location"] == expected

    response = client.get("/accounts/login/")

    assert response.status_code == 302
    assert response["Location"] == expected


def test_back_office_is_closed_before_sign_in():
    tenant = make_tenant()
    assert not admin_reachable(client_for(host_of(tenant)))


def test_wrong_password_is_refused_with_a_message():
    tenant = make_tenant()
    user = make_member(tenant, "sales")
    client = client_for(host_of(tenant))

    response = password_login(client, user.email, "not the password")

    assert response.status_code == 400
    assert b"Email or password is not correct" in response.content
    assert not admin_reachable(client)


@pytest.mark.parametrize("role", ["sales", "read_only", "owner", "finance"])
def test_user_with_a_confirmed_device_must_verify_before_back_office(role):
    tenant = make_tenant()
    user = _member(tenant, role)
    device = enrol_totp(user)
    client = client_for(host_of(tenant))

    response = after_password(client, user)

    assert response.status_code == 302
    assert response["Location"] == "/accounts/verify/?next=%2Fadmin%2F"
    assert not admin_reachable(client)

    bad = client.post("/accounts/verify/", {"token": wrong_code(device)})
    assert bad.status_code == 400
    assert b"That code is not valid" in bad.content
    assert not admin_reachable(client)

    device.refresh_from_db()
    device.throttle_reset()  # the wrong code throttles the device for a second; a person is slower than that
    good = client.post("/accounts/verify/", {"token": totp_now(device)})
    assert good.status_code == 302
    assert good["Location"] == "/admin/"
    assert admin_reachable(client)


def test_verify_refuses_a_code_that_was_already_used():
    tenant = make_tenant()
    user = make_member(tenant, "sales")
    device = enrol_totp(user)
    code = totp_now(device)
    first = client_for(host_of(tenant))
    after_password(first, user)
    assert first.post("/accounts/verify/", {"token": code}).status_code == 302

    second = client_for(host_of(tenant))
    after_password(second, user)
    replay = second.post("/accounts/verify/", {"token": code})
    assert replay.status_code == 400
    assert not admin_reachable(second)


def test_enrolment_shows_qr_and_secret_refuses_wrong_code_then_confirms():
    tenant = make_tenant()
    owner = owner_of(tenant)
    client = client_for(host_of(tenant))
    after_password(client, owner)

    page = client.get("/accounts/mfa/setup/?next=/admin/")

    assert page.status_code == 200
    pending = TOTPDevice.objects.get(user=owner)
    assert not pending.confirmed
    secret = base64.b32encode(pending.bin_key).decode().rstrip("=")
    assert page.context["secret"] == secret
    assert secret.encode() in page.content
    assert page.context["qr_code"].startswith("data:image/svg+xml")
    assert b'src="data:image/svg+xml' in page.content
    # Opening the page again keeps the same pending secret (the app was already scanned).
    assert client.get("/accounts/mfa/setup/").context["secret"] == secret

    wrong = client.post("/accounts/mfa/setup/", {"token": wrong_code(pending), "next": "/admin/"})

    assert wrong.status_code == 400
    assert b"That code is not valid" in wrong.content
    assert not TOTPDevice.objects.filter(user=owner, confirmed=True).exists()
    assert not mfa.has_confirmed_device(owner)
    assert not StaticToken.objects.filter(device__user=owner).exists()
    assert not admin_reachable(client)

    pending.refresh_from_db()
    pending.throttle_reset()  # a second's throttle after the wrong code; see the verify test
    totp = TOTP(pending.bin_key, pending.step, pending.t0, pending.digits, pending.drift)
    right = client.post("/accounts/mfa/setup/", {"token": f"{totp.token():06d}", "next": "/admin/"})

    assert right.status_code == 200
    codes = right.context["codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    for code in codes:
        assert code.encode() in right.content
    pending.refresh_from_db()
    assert pending.confirmed
    assert StaticToken.objects.filter(device__user=owner).count() == 10
    assert admin_reachable(client)
    with tenant_context(tenant):
        actions = set(AuditEvent.objects.filter(actor_id=str(owner.pk)).values_list("action", flat=True))
    assert {"mfa_enrolled", "recovery_codes"} <= actions


def test_enrolment_code_can_be_typed_with_spaces():
    tenant = make_tenant()
    user = make_member(tenant, "manager")
    client = client_for(host_of(tenant))
    after_password(client, user)
    client.get("/accounts/mfa/setup/")
    pending = TOTPDevice.objects.get(user=user, confirmed=False)
    code = totp_now(pending)

    response = client.post("/accounts/mfa/setup/", {"token": f"{code[:3]} {code[3:]}"})

    assert response.status_code == 200
    assert len(response.context["codes"]) == 10


def test_setup_page_with_confirmed_device_asks_for_the_current_factor_first():
    """Someone holding only the password cannot replace the authenticator."""
    tenant = make_tenant()
    owner = owner_of(tenant)
    device = enrol_totp(owner)
    client = client_for(host_of(tenant))
    after_password(client, owner)

    response = client.get("/accounts/mfa/setup/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/verify/")
    assert TOTPDevice.objects.filter(user=owner).get() == device


def test_recovery_code_works_once():
    tenant = make_tenant()
    owner = owner_of(tenant)
    enrol_totp(owner)
    codes = mfa.issue_recovery_codes(owner)
    host = host_of(tenant)

    first = client_for(host)
    after_password(first, owner)
    used = first.post("/accounts/verify/", {"token": codes[0]})
    assert used.status_code == 302
    assert used["Location"] == "/admin/"
    assert admin_reachable(first)
    assert StaticToken.objects.filter(device__user=owner).count() == 9
    assert not StaticToken.objects.filter(device__user=owner, token=codes[0]).exists()

    # Typed in capitals and without its dash, another code still works.
    second = client_for(host)
    after_password(second, owner)
    assert second.post("/accounts/verify/", {"token": codes[1].upper().replace("-", "")}).status_code == 302
    assert admin_reachable(second)

    third = client_for(host)
    after_password(third, owner)
    again = third.post("/accounts/verify/", {"token": codes[0]})
    assert again.status_code == 400
    assert b"That code is not valid" in again.content
    assert not admin_reachable(third)
    with tenant_context(tenant):
        used_events = AuditEvent.objects.filter(action="recovery_code_used", actor_id=str(owner.pk))
        failed_events = AuditEvent.objects.filter(action="mfa_failed", actor_id=str(owner.pk))
        assert used_events.count() == 2
        assert failed_events.count() == 1


def test_logout_ends_the_verified_session():
    tenant = make_tenant()
    user = make_member(tenant, "sales")
    client = client_for(host_of(tenant))
    after_password(client, user)
    assert admin_reachable(client)

    assert client.post("/accounts/logout/").status_code == 302
    assert not admin_reachable(client)


def test_deactivating_a_member_ends_their_open_session():
    tenant = make_tenant()
    user = make_member(tenant, "sales")
    client = client_for(host_of(tenant))
    after_password(client, user)
    assert admin_reachable(client)

    with tenant_context(tenant):
        Membership.objects.filter(user=user).update(is_active=False)

    assert not admin_reachable(client)
    assert client.get("/api/v1/me/").status_code in (401, 403)


# --- platform host -------------------------------------------------------------------------------------------


def _platform_admin(email="root@platform.example"):
    return User.objects.create_superuser(email, PASSWORD)


def test_platform_superuser_must_verify_before_platform_admin():
    user = _platform_admin()
    device = enrol_totp(user)
    client = client_for(PLATFORM_HOST)

    response = after_password(client, user)

    assert response.status_code == 302
    assert response["Location"] == "/accounts/verify/?next=%2Fadmin%2F"
    assert not admin_reachable(client)
    assert client.get("/admin/tenants/tenant/").status_code == 302

    assert client.post("/accounts/verify/", {"token": totp_now(device)}).status_code == 302
    index = client.get("/admin/")
    assert index.status_code == 200
    assert b"tourops platform" in index.content
    assert client.get("/admin/tenants/tenant/").status_code == 200


def test_platform_superuser_without_device_is_sent_to_enrolment():
    user = _platform_admin()
    client = client_for(PLATFORM_HOST)

    response = after_password(client, user)

    assert response.status_code == 302
    assert response["Location"] == "/accounts/mfa/setup/?next=%2Fadmin%2F"
    assert not admin_reachable(client)


def test_tenant_member_cannot_sign_in_on_platform_host():
    tenant = make_tenant()
    owner = owner_of(tenant)
    device = enrol_totp(owner)
    client = client_for(PLATFORM_HOST)

    response = password_login(client, owner.email)

    assert response.status_code == 400
    assert b"no access to this site" in response.content
    assert "_auth_user_id" not in client.session
    assert client.post("/accounts/verify/", {"token": totp_now(device)})["Location"].startswith(
        "/accounts/login/"
    )
    assert not admin_reachable(client)


def test_platform_superuser_cannot_sign_in_on_a_tenant_host_without_membership():
    tenant = make_tenant()
    user = _platform_admin()
    client = client_for(host_of(tenant))

    response = password_login(client, user.email)

    assert response.status_code == 400
    assert not admin_reachable(client)


def test_member_of_another_tenant_cannot_sign_in_here():
    tenant_a, tenant_b = make_tenant(), make_tenant()
    user = make_member(tenant_a, "sales")
    client = client_for(host_of(tenant_b))

    response = password_login(client, user.email)

    assert response.status_code == 400
    assert not admin_reachable(client)


def test_next_is_kept_for_local_paths_and_dropped_for_other_sites():
    tenant = make_tenant()
    user = make_member(tenant, "sales")
    host = host_of(tenant)

    local = client_for(host).post(
        "/accounts/login/?next=/admin/tenants/auditevent/", {"email": user.email, "password": PASSWORD}
    )
    evil = client_for(host).post(
        "/accounts/login/", {"email": user.email, "password": PASSWORD, "next": "https://evil.example/"}
    )

    assert local["Location"] == "/admin/tenants/auditevent/"
    assert evil["Location"] == "/admin/"


def test_successful_sign_in_is_audited():
    tenant = make_tenant()
    user = make_member(tenant, "sales")

    after_password(client_for(host_of(tenant)), user)

    with tenant_context(tenant):
        assert AuditEvent.objects.filter(action="login", actor_id=str(user.pk)).count() == 1
