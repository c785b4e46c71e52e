"""API isolation: a JWT is bound to the tenant it was issued on, and lists and details never cross tenants."""

from __future__ import annotations

from django.test import Client

from tenants.context import tenant_context
from tenants.models import AuditEvent, Membership
from tenants.roles import Role
from tests.attacks.rows import create_row
from tests.factories import enrol_totp, host_of, make_member, obtain_tokens, owner_of, totp_now

WRONG_TENANT = "This token was not issued for this site."


def _tokens(client: Client, tenant) -> tuple[dict, object]:
    owner = owner_of(tenant)
    device = enrol_totp(owner)
    return obtain_tokens(client, tenant, owner, otp=totp_now(device)), owner


def _get(client: Client, path: str, tenant, access: str):
    return client.get(
        path, {"page_size": 200}, HTTP_HOST=host_of(tenant), HTTP_AUTHORIZATION=f"Bearer {access}"
    )


def _ids(model, tenant) -> set[str]:
    with tenant_context(tenant):
        return {str(pk) for pk in model.objects.values_list("pk", flat=True)}


def _assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    return body["error"]


def test_jwt_from_one_tenant_is_refused_on_another(tenants, client):
    a, b = tenants
    tokens, owner_a = _tokens(client, a)
    access = tokens["access"]
    with tenant_context(a):
        a_membership = Membership.objects.get(user=owner_a)

    me = _get(client, "/api/v1/me/", a, access)
    assert me.status_code == 200
    assert (me.json()["email"], me.json()["role"]) == (owner_a.email, Role.OWNER)
    listed = _get(client, "/api/v1/memberships/", a, access)
    assert listed.status_code == 200
    assert [m["id"] for m in listed.json()["results"]] == [str(a_membership.pk)]

    for path in (
        "/api/v1/me/",
        "/api/v1/memberships/",
        f"/api/v1/memberships/{a_membership.pk}/",
        "/api/v1/audit-events/",
    ):
        response = _get(client, path, b, access)
        error = _assert_error(response, 401)
        assert error["message"] == WRONG_TENANT, path
        assert "owner@" not in response.content.decode()

    # Even when the same person is also a member of b, a's token stays a's.
    with tenant_context(b):
        Membership.objects.create(user=owner_a, role=Role.OWNER)
    response = _get(client, "/api/v1/me/", b, access)
    assert _assert_error(response, 401)["message"] == WRONG_TENANT

    # The refresh token cannot be exchanged on b either (and is not used up by trying).
    response = client.post(
        "/api/v1/auth/token/refresh/",
        {"refresh": tokens["refresh"]},
        content_type="application/json",
        HTTP_HOST=host_of(b),
    )
    assert _assert_error(response, 401)["message"] == WRONG_TENANT
    response = client.post(
        "/api/v1/auth/token/refresh/",
        {"refresh": tokens["refresh"]},
        content_type="application/json",
        HTTP_HOST=host_of(a),
    )
    assert response.status_code == 200


def test_jwt_refusal_carries_code_token_wrong_tenant(tenants, client):
    a, b = tenants
    tokens, _ = _tokens(client, a)
    response = _get(client, "/api/v1/me/", b, tokens["access"])
    assert _assert_error(response, 401)["code"] == "token_wrong_tenant"


def test_lists_and_details_show_only_own_tenants_rows(tenants, client):
    a, b = tenants
    make_member(a, Role.SALES, "sales-secret@a.example")
    make_member(b, Role.SALES, "sales@b.example")
    create_row(AuditEvent, a, "a")
    victim_membership = create_row(Membership, a, "a").obj
    victim_event = create_row(AuditEvent, a, "a").obj
    tokens, _ = _tokens(client, b)
    access = tokens["access"]
    a_memberships, b_memberships = _ids(Membership, a), _ids(Membership, b)
    a_events, b_events = _ids(AuditEvent, a), _ids(AuditEvent, b)
    assert a_memberships and a_events and b_events

    response = _get(client, "/api/v1/memberships/", b, access)
    assert response.status_code == 200
    listed = {m["id"] for m in response.json()["results"]}
    assert listed == b_memberships
    assert not listed & a_memberships
    assert "a.example" not in response.content.decode()

    response = _get(client, "/api/v1/audit-events/", b, access)
    assert response.status_code == 200
    listed = {e["id"] for e in response.json()["results"]}
    assert listed == b_events
    assert not listed & a_events

    own_membership = next(iter(b_memberships))
    assert _get(client, f"/api/v1/memberships/{own_membership}/", b, access).status_code == 200
    for path in (
        f"/api/v1/memberships/{victim_membership.pk}/",
        f"/api/v1/audit-events/{victim_event.pk}/",
    ):
        response = _get(client, path, b, access)
        assert _assert_error(response, 404)["code"] == "not_found"
        assert str(victim_membership.user.email) not in response.content.decode()
