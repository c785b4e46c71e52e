"""Bad input through the real API gets the one error format and changes nothing; /healthz reports each check."""

from __future__ import annotations

import json
import socket

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings

from accounts.models import User
from tenants.context import tenant_context
from tenants.models import AuditEvent
from tests.factories import host_of, make_member, make_tenant, obtain_tokens

NAME, PHONE = "Ana Silva", "+351 912 345 678"


@pytest.fixture
def member(db):
    tenant = make_tenant()
    user = make_member(tenant, "sales")
    user.full_name, user.phone = NAME, PHONE
    user.save()
    return tenant, user


@pytest.fixture
def api(client, member):
    """Calls as the member with a bearer token from the token endpoint."""
    tenant, user = member
    host = host_of(tenant)
    access = obtain_tokens(client, tenant, user)["access"]
    headers = {"HTTP_HOST": host, "HTTP_AUTHORIZATION": f"Bearer {access}"}

    def call(method: str, path: str, data=None, content_type: str = "application/json"):
        kwargs = dict(headers)
        if data is not None:
            kwargs.update(data=data, content_type=content_type)
        return getattr(client, method)(path, **kwargs)

    return call


def raw_row(user: User) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute("SELECT full_name, phone FROM accounts_user WHERE id = %s", [user.pk])
        full_name, phone = cursor.fetchone()
    return full_name, bytes(phone)


def audit_count(tenant) -> int:
    with tenant_context(tenant):
        return AuditEvent.objects.count()


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "fields"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fields"], dict)
    return error


@pytest.fixture
def unchanged(member):
    """Asserts after the test that the user's row (byte for byte) and the tenant's audit log did not change."""
    tenant, user = member
    before, events = raw_row(user), audit_count(tenant)
    yield
    assert raw_row(user) == before
    assert audit_count(tenant) == events
    user.refresh_from_db()
    assert (user.full_name, user.phone) == (NAME, PHONE)


def test_valid_patch_changes_the_row(api, member):
    """Control for the tests below: the same request with good data does change the row."""
    tenant, user = member
    events = audit_count(tenant)
    response = api("patch", "/api/v1/me/", json.dumps({"full_name": "Ana S.", "phone": "+1 555 0100"}))
    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert (user.full_name, user.phone) == ("Ana S.", "+1 555 0100")
    assert audit_count(tenant) == events + 1


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    "body", [b'{"full_name": ', b"{'full_name': 'x'}", b"\xff\xfe", b'{"full_name": "x"} trailing']
)
def test_malformed_json(api, body):
    error = assert_error(api("patch", "/api/v1/me/", body), 400, "malformed_request")
    assert error["fields"] == {}


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    "payload,field",
    [
        ({"full_name": ["x"]}, "full_name"),
        ({"full_name": {"first": "Ana"}}, "full_name"),
        ({"full_name": True}, "full_name"),
        ({"full_name": None}, "full_name"),
        ({"full_name": "x" * 201}, "full_name"),
        ({"phone": ["+351 912 345 678"]}, "phone"),
        ({"phone": {"number": "912"}}, "phone"),
        ({"phone": None}, "phone"),
        ({"phone": "call me maybe"}, "phone"),
        ({"phone": "1" * 33}, "phone"),
        ({"full_name": "Ana S.", "phone": ["x"]}, "phone"),  # one bad field: nothing is saved
    ],
    ids=[
        "name-list",
        "name-object",
        "name-bool",
        "name-null",
        "name-too-long",
        "phone-list",
        "phone-object",
        "phone-null",
        "phone-letters",
        "phone-too-long",
        "one-good-one-bad",
    ],
)
def test_wrong_types_and_values(api, payload, field):
    error = assert_error(api("patch", "/api/v1/me/", json.dumps(payload)), 400, "invalid")
    assert list(error["fields"]) == [field]
    assert all(isinstance(message, str) and message for message in error["fields"][field])
    assert field in error["message"]


@pytest.mark.usefixtures("unchanged")
def test_body_not_an_object(api):
    error = assert_error(api("patch", "/api/v1/me/", json.dumps(["full_name", "x"])), 400, "invalid")
    assert "dictionary" in error["message"] or "object" in error["message"]


def test_read_only_fields_are_ignored(api, member):
    _, user = member
    before = raw_row(user)
    response = api("patch", "/api/v1/me/", json.dumps({"email": "evil@example.com", "role": "owner"}))
    assert response.status_code == 200
    assert response.json()["email"] == user.email
    assert response.json()["role"] == "sales"
    assert raw_row(user) == before
    user.refresh_from_db()
    assert user.email != "evil@example.com"


@pytest.mark.usefixtures("unchanged")
def test_oversized_body(api):
    body = json.dumps({"full_name": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 1024 * 1024
    error = assert_error(api("patch", "/api/v1/me/", body), 400, "request_too_large")
    assert str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) in error["message"]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    "body,content_type",
    [
        ("full_name=Evil", "application/x-www-form-urlencoded"),
        ("full_name=Evil", "text/plain"),
        ('{"full_name": "Evil"}', "application/xml"),
    ],
)
def test_unsupported_content_type(api, body, content_type):
    assert_error(api("patch", "/api/v1/me/", body, content_type), 415, "unsupported_media_type")


@pytest.mark.usefixtures("unchanged")
def test_multipart_is_unsupported(api):
    response = api("patch", "/api/v1/me/", {"full_name": "Evil"}, "multipart/form-data; boundary=BoUnDaRy")
    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("method", ["put", "delete", "post"])
def test_method_not_allowed(api, method):
    assert_error(api(method, "/api/v1/me/", json.dumps({"full_name": "Evil"})), 405, "method_not_allowed")


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("path", ["/api/v1/does-not-exist/", "/api/v1/me/extra/", "/api/v2/me/"])
def test_unknown_api_url(api, path):
    assert_error(api("get", path), 404, "not_found")
    assert_error(api("patch", path, json.dumps({"full_name": "Evil"})), 404, "not_found")


def test_unknown_api_url_unauthenticated(client, member):
    tenant, _ = member
    assert_error(client.get("/api/v1/does-not-exist/", HTTP_HOST=host_of(tenant)), 404, "not_found")


@pytest.mark.usefixtures("unchanged")
def test_bad_token(client, member):
    tenant, _ = member
    response = client.patch(
        "/api/v1/me/",
        json.dumps({"full_name": "Evil"}),
        content_type="application/json",
        HTTP_HOST=host_of(tenant),
        HTTP_AUTHORIZATION="Bearer not.a.token",
    )
    assert_error(response, 401, "authentication_failed")


# --- /healthz --------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["platform.localhost", "unknown.example", "10.0.0.7"])
def test_healthz_ok(client, host):
    response = client.get("/healthz", HTTP_HOST=host)
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert body["checks"] == {"database": "ok", "cache": "ok"}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.django_db
def test_healthz_503_when_cache_unreachable(client):
    unreachable = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": 0.5,
            "SOCKET_TIMEOUT": 0.5,
        },
    }
    with override_settings(CACHES={**settings.CACHES, "default": unreachable}):
        response = client.get("/healthz", HTTP_HOST="platform.localhost")
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["cache"].startswith("error")
    assert body["duration_ms"] < 5000
