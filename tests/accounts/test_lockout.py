"""Lock-out after repeated wrong passwords (django-axes, counted in Valkey), on the form and on the API."""

from __future__ import annotations

import pytest
from django.conf import settings

from tenants.context import tenant_context
from tenants.models import AuditEvent
from tests.accounts.helpers import admin_reachable, api_post, client_for, password_login
from tests.factories import PASSWORD, host_of, make_member, make_tenant

pytestmark = pytest.mark.django_db

LIMIT = settings.AXES_FAILURE_LIMIT
RETRY_AFTER = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
TOKEN_URL = "/api/v1/auth/token/"


def _events(tenant, action: str, email: str) -> int:
    with tenant_context(tenant):
        return AuditEvent.objects.filter(action=action, actor_label=email).count()


def test_limit_is_five():
    assert LIMIT == 5


def test_form_locks_out_after_repeated_failures_even_with_right_password():
    tenant = make_tenant()
    user = make_member(tenant, "sales")
    client = client_for(host_of(tenant))

    for _ in range(LIMIT - 1):
        assert password_login(client, user.email, "wrong password!").status_code == 400
    password_login(client, user.email, "wrong password!")  # the limit is reached

    response = password_login(client, user.email)

    assert response.status_code == 429
    assert b"Too many failed sign-in attempts" in response.content
    assert response["Retry-After"] == RETRY_AFTER
    assert "_auth_user_id" not in client.session
    assert not admin_reachable(client)
    assert _events(tenant, "login_failed", user.email) >= LIMIT
    assert _events(tenant, "locked_out", user.email) >= 1


def test_form_lockout_is_per_email_and_ip():
    tenant = make_tenant()
    user = make_member(tenant, "sales")
    other = make_member(tenant, "sales")
    host = host_of(tenant)
    client = client_for(host)
    for _ in range(LIMIT):
        password_login(client, user.email, "wrong password!")
    assert password_login(client, user.email).status_code == 429

    # Another person on the same network, and the same person elsewhere, are not locked out.
    other_response = password_login(client_for(host), other.email, "wrong password!")
    assert other_response.status_code == 400
    elsewhere = password_login(client_for(host, REMOTE_ADDR="203.0.113.9"), user.email, "wrong password!")
    assert elsewhere.status_code == 400


def test_failures_below_the_limit_do_not_lock():
    tenant = make_tenant()
    user = make_member(tenant, "sales")
    client = client_for(host_of(tenant))
    for _ in range(LIMIT - 1):
        response = password_login(client, user.email, "wrong password!")
        assert response.status_code == 400
        assert b"Email or password is not correct" in response.content
    assert _events(tenant, "login_failed", user.email) == LIMIT - 1
    assert _events(tenant, "locked_out", user.email) == 0


def _lock_out_via_api(client, email):
    for _ in range(LIMIT - 1):
        response = api_post(client, TOKEN_URL, {"email": email, "password": "wrong password!"})
        assert response.status_code == 401
    api_post(client, TOKEN_URL, {"email": email, "password": "wrong password!"})  # the limit is reached


def test_api_token_endpoint_refuses_the_right_password_once_locked_out():
    tenant = make_tenant()
    user = make_member(tenant, "sales")
    client = client_for(host_of(tenant))
    assert api_post(client, TOKEN_URL, {"email": user.email, "password": PASSWORD}).status_code == 200
    _lock_out_via_api(client, user.email)

    response = api_post(client, TOKEN_URL, {"email": user.email, "password": PASSWORD})

    assert response.status_code == 429
    assert "access" not in response.json() and "refresh" not in response.json()
    assert _events(tenant, "login_failed", user.email) >= LIMIT
    assert _events(tenant, "locked_out", user.email) >= 1


def test_api_lockout_answers_429_locked_out_with_retry_after():
    tenant = make_tenant()
    user = make_member(tenant, "sales")
    client = client_for(host_of(tenant))
    _lock_out_via_api(client, user.email)

    response = api_post(client, TOKEN_URL, {"email": user.email, "password": PASSWORD})

    assert response.status_code == 429, response.content
    body = response.json()
    assert body["error"]["code"] == "locked_out"
    assert body["error"]["message"].startswith("Too many failed sign-in attempts")
    assert response["Retry-After"] == RETRY_AFTER


def test_api_token_failures_are_audited():
    tenant = make_tenant()
    user = make_member(tenant, "sales")
    client = client_for(host_of(tenant))

    response = api_post(client, TOKEN_URL, {"email": user.email, "password": "wrong password!"})

    assert response.status_code == 401
    assert _events(tenant, "login_failed", user.email) == 1


def test_form_failures_count_towards_api_lockout():
    """One counter per (email, IP): switching from the form to the API does not buy more guesses."""
    tenant = make_tenant()
    user = make_member(tenant, "sales")
    client = client_for(host_of(tenant))
    for _ in range(LIMIT):
        password_login(client, user.email, "wrong password!")

    response = api_post(client, TOKEN_URL, {"email": user.email, "password": PASSWORD})

    assert response.status_code == 429
    assert "access" not in response.json()
