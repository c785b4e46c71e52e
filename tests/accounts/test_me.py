"""/api/v1/me/: read and change one's own name and phone (phone encrypted at rest, audited without values)."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from accounts.models import User
from tenants.context import tenant_context
from tenants.models import AuditEvent
from tests.accounts.helpers import bearer, client_for
from tests.factories import host_of, make_member, make_tenant, obtain_tokens

pytestmark = pytest.mark.django_db

ME = "/api/v1/me/"
PHONE = "+351 912 345 678"


@pytest.fixture
def member():
    tenant = make_tenant()
    user = make_member(tenant, "sales")
    client = client_for(host_of(tenant))
    return tenant, user, client, bearer(obtain_tokens(client, tenant, user)["access"])


def _patch(client, auth, data):
    return client.patch(ME, data, content_type="application/json", **auth)


def _stored_phone(user) -> bytes | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT phone FROM accounts_user WHERE id = %s", [user.pk])
        value = cursor.fetchone()[0]
    return None if value is None else bytes(value)


def _change_events(tenant, user):
    with tenant_context(tenant):
        return list(AuditEvent.objects.filter(action="change", target_id=str(user.pk)))


def test_patch_updates_name_and_phone_and_encrypts_the_phone(member):
    tenant, user, client, auth = member

    response = _patch(client, auth, {"full_name": "Ana Sousa", "phone": PHONE})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["full_name"] == "Ana Sousa"
    assert body["phone"] == PHONE
    assert body["email"] == user.email
    fresh = User.objects.get(pk=user.pk)
    assert fresh.full_name == "Ana Sousa"
    assert fresh.phone == PHONE
    stored = _stored_phone(user)
    assert stored is not None
    assert PHONE.encode() not in stored and b"912" not in stored
    assert client.get(ME, **auth).json()["phone"] == PHONE


def test_patch_is_audited_without_the_phone_number(member):
    tenant, user, client, auth = member

    _patch(client, auth, {"full_name": "Ana Sousa", "phone": PHONE})

    events = _change_events(tenant, user)
    assert len(events) == 1
    event = events[0]
    assert event.actor_id == str(user.pk)
    assert event.target_type == "accounts.user"
    assert event.changes["full_name"] == ["", "Ana Sousa"]
    assert "phone" in event.changes
    dumped = json.dumps(event.changes) + event.target_label + event.actor_label
    assert PHONE not in dumped
    assert "912" not in dumped and "345" not in dumped


@pytest.mark.parametrize("phone", ["call me maybe", "12", "+351 912 345 678 ext. 9", "+" + "1" * 40])
def test_invalid_phone_is_refused_and_nothing_changes(member, phone):
    tenant, user, client, auth = member

    response = _patch(client, auth, {"full_name": "Changed Name", "phone": phone})

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"phone"}
    assert isinstance(error["fields"]["phone"], list) and error["fields"]["phone"]
    fresh = User.objects.get(pk=user.pk)
    assert fresh.full_name == ""
    assert fresh.phone == ""
    assert _stored_phone(user) is None
    assert _change_events(tenant, user) == []


def test_email_and_role_are_read_only(member):
    tenant, user, client, auth = member

    response = _patch(client, auth, {"email": "other@example.com", "role": "owner", "full_name": "Ana"})

    assert response.status_code == 200
    assert response.json()["email"] == user.email
    assert response.json()["role"] == "sales"
    assert User.objects.get(pk=user.pk).email == user.email
    with tenant_context(tenant):
        assert user.memberships.get().role == "sales"


def test_clearing_the_phone_stores_nothing(member):
    _, user, client, auth = member
    _patch(client, auth, {"phone": PHONE})

    response = _patch(client, auth, {"phone": ""})

    assert response.status_code == 200
    assert response.json()["phone"] == ""
    assert _stored_phone(user) is None


def test_put_is_not_allowed(member):
    _, _, client, auth = member
    response = client.put(ME, {"full_name": "x"}, content_type="application/json", **auth)
    assert response.status_code == 405
