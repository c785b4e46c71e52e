"""Security headers, cookies, host routing and the deploy check.

The CSP nonce (django-csp 4) is lazy: it is only generated, and only added to the header, when a template or view
reads it. No current template renders an inline script or style, so the real pages carry no nonce; the nonce
wiring (settings + middleware + context processor) is checked with a small view rendered on a tenant host, and
the real pages are checked for "no inline script/style without the header's nonce".
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.template import engines
from django.test import Client, override_settings
from django.urls import path as url_path

from tests.factories import PASSWORD, host_of, make_member, make_tenant, obtain_tokens

BASE_DIR = Path(settings.BASE_DIR)
PLATFORM_HOST = "platform.localhost"


# --- a test-only page that uses the nonce (this module doubles as its URLconf) ----------------------------------


def _nonce_page(request):
    from django.http import HttpResponse

    template = engines["django"].from_string(
        '<!doctype html><script nonce="{{ CSP_NONCE }}">window.x = 1;</script>'
        '<style nonce="{{ request.csp_nonce }}">body { color: black; }</style>'
    )
    return HttpResponse(template.render({}, request))


urlpatterns = [url_path("csp-nonce-probe/", _nonce_page)]


# --- helpers ----------------------------------------------------------------------------------------------------


def csp_directives(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.status_code} response"
    directives = {}
    for part in header.split(";"):
        tokens = part.split()
        if tokens:
            directives[tokens[0]] = tokens[1:]
    return directives


def header_nonce(response) -> str | None:
    script_src = csp_directives(response).get("script-src", [])
    nonces = [token[len("'nonce-") : -1] for token in script_src if token.startswith("'nonce-")]
    assert len(nonces) <= 1
    return nonces[0] if nonces else None


_INLINE_TAG = re.compile(r"<(script|style)\b([^>]*)>", re.IGNORECASE)


def assert_inline_tags_use_nonce(response) -> None:
    """Every inline <script>/<style> in an HTML page carries the nonce of the CSP header."""
    if not response.get("Content-Type", "").startswith("text/html"):
        return
    nonce = header_nonce(response)
    for tag, attrs in _INLINE_TAG.findall(response.content.decode()):
        if tag.lower() == "script" and re.search(r"\bsrc\s*=", attrs):
            continue  # external script: allowed by 'self'
        assert nonce is not None, f"inline <{tag}> rendered but the CSP header has no nonce"
        assert f'nonce="{nonce}"' in attrs, f"inline <{tag}{attrs}> does not carry the header's nonce"


def assert_security_headers(response) -> None:
    csp = csp_directives(response)
    assert "'self'" in csp["script-src"]
    for directive in ("script-src", "style-src", "default-src"):
        assert "'unsafe-inline'" not in csp.get(directive, [])
        assert "'unsafe-eval'" not in csp.get(directive, [])
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'self'"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    permissions = response.headers["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "usb=()"):
        assert feature in permissions
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers  # only on secure requests
    assert_inline_tags_use_nonce(response)


def assert_hsts(response) -> None:
    hsts = response.headers.get("Strict-Transport-Security", "")
    max_age = re.search(r"max-age=(\d+)", hsts)
    assert max_age and int(max_age.group(1)) >= 31536000, hsts
    assert "includeSubDomains" in hsts


@pytest.fixture
def tenant(db):
    return make_tenant("zephyr", name="Zephyrine Voyages")


@pytest.fixture
def host(tenant):
    return host_of(tenant)


# --- headers on each kind of page --------------------------------------------------------------------------------


def test_retail_page_headers(client, host):
    response = client.get("/", HTTP_HOST=host)
    assert response.status_code == 200
    assert_security_headers(response)


def test_login_page_headers(client, host):
    response = client.get("/accounts/login/", HTTP_HOST=host)
    assert response.status_code == 200
    assert_security_headers(response)
    assert "no-store" in response.headers["Cache-Control"]


@pytest.mark.parametrize("on_platform", [False, True], ids=["tenant", "platform"])
def test_admin_login_redirect_headers(client, host, on_platform):
    http_host = PLATFORM_HOST if on_platform else host
    response = client.get("/admin/", HTTP_HOST=http_host)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login/")
    assert_security_headers(response)
    response = client.get(response.headers["Location"], HTTP_HOST=http_host)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/accounts/login/")
    assert_security_headers(response)


def test_api_unauthenticated_headers(client, host):
    response = client.get("/api/v1/me/", HTTP_HOST=host)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert_security_headers(response)
    assert response.headers["Cache-Control"] == "no-store"


def test_api_authenticated_headers(client, tenant, host):
    user = make_member(tenant, "sales")
    token = obtain_tokens(client, tenant, user)["access"]
    response = client.get("/api/v1/me/", HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response.json()["email"] == user.email
    assert_security_headers(response)
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "path,status",
    [("/", 200), ("/accounts/login/", 200), ("/admin/", 302), ("/api/v1/me/", 401)],
)
def test_hsts_on_secure_requests_only(client, host, path, status):
    secure = client.get(path, HTTP_HOST=host, secure=True)
    assert secure.status_code == status
    assert_hsts(secure)
    plain = client.get(path, HTTP_HOST=host)
    assert plain.status_code == status
    assert "Strict-Transport-Security" not in plain.headers


# --- CSP nonce ---------------------------------------------------------------------------------------------------


@override_settings(ROOT_URLCONF=__name__)
def test_csp_nonce_matches_html_and_changes_per_request(client, host):
    seen = set()
    for _ in range(2):
        response = client.get("/csp-nonce-probe/", HTTP_HOST=host)
        assert response.status_code == 200
        nonce = header_nonce(response)
        assert nonce and len(nonce) >= 16
        assert f"'nonce-{nonce}'" in csp_directives(response)["style-src"]
        html = response.content.decode()
        assert html.count(f'nonce="{nonce}"') == 2
        assert_inline_tags_use_nonce(response)
        seen.add(nonce)
    assert len(seen) == 2, "the CSP nonce must be fresh on every request"


# --- cookies -----------------------------------------------------------------------------------------------------


def _assert_cookie_flags(response, name: str) -> None:
    assert name in response.cookies, f"{name} cookie not set; cookies: {list(response.cookies)}"
    morsel = response.cookies[name]
    assert morsel["secure"] is True, f"{name} is not Secure"
    assert morsel["httponly"] is True, f"{name} is not HttpOnly"
    assert morsel["samesite"] == "Lax", f"{name} SameSite is {morsel['samesite']!r}"


def test_csrf_cookie_flags_on_login_page(host):
    client = Client(enforce_csrf_checks=True)
    response = client.get("/accounts/login/", HTTP_HOST=host, secure=True)
    assert response.status_code == 200
    _assert_cookie_flags(response, settings.CSRF_COOKIE_NAME)


def test_failed_login_post_changes_no_session(tenant, host):
    user = make_member(tenant, "sales")
    client = Client(enforce_csrf_checks=True)
    page = client.get("/accounts/login/", HTTP_HOST=host, secure=True)
    response = client.post(
        "/accounts/login/",
        {
            "email": user.email,
            "password": "wrong password",
            "csrfmiddlewaretoken": page.cookies[settings.CSRF_COOKIE_NAME].value,
        },
        HTTP_HOST=host,
        secure=True,
        HTTP_REFERER=f"https://{host}/accounts/login/",
    )
    assert response.status_code == 400
    assert settings.SESSION_COOKIE_NAME not in response.cookies
    assert csp_directives(response)["frame-ancestors"] == ["'none'"]  # headers on the error page too
    assert_hsts(response)


def test_login_post_sets_secure_session_and_csrf_cookies(tenant, host):
    user = make_member(tenant, "sales")
    client = Client(enforce_csrf_checks=True)
    page = client.get("/accounts/login/", HTTP_HOST=host, secure=True)
    response = client.post(
        "/accounts/login/",
        {
            "email": user.email,
            "password": PASSWORD,
            "csrfmiddlewaretoken": page.cookies[settings.CSRF_COOKIE_NAME].value,
        },
        HTTP_HOST=host,
        secure=True,
        HTTP_REFERER=f"https://{host}/accounts/login/",
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"
    _assert_cookie_flags(response, settings.SESSION_COOKIE_NAME)
    _assert_cookie_flags(response, settings.CSRF_COOKIE_NAME)  # rotated at login
    assert_hsts(response)


# --- unknown and suspended hosts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/admin/", "/accounts/login/", "/api/v1/me/"])
@pytest.mark.parametrize("bad_host", ["nobody.testserver", "zephyr.testserver.evil.example", "testserver"])
def test_unknown_host_is_404_without_tenant_data(client, tenant, path, bad_host):
    client.get("/", HTTP_HOST=host_of(tenant))  # the tenant exists and is routable
    response = client.get(path, HTTP_HOST=bad_host)
    assert response.status_code == 404
    body = response.content.decode().lower()
    for leak in ("zephyr", "voyages", str(tenant.pk)):
        assert leak not in body
    assert_security_headers(response)


def test_suspended_tenant_host_is_404_without_tenant_data(client, tenant, host):
    assert client.get("/", HTTP_HOST=host).status_code == 200  # now cached as routable
    tenant.status = tenant.Status.SUSPENDED
    tenant.save()
    response = client.get("/", HTTP_HOST=host)
    assert response.status_code == 404
    assert b"Zephyrine" not in response.content


# --- manage.py check --deploy -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deploy_check(tmp_path_factory):
    """``check --deploy`` in a production-like environment: nothing inherited but the service locations."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        # An empty var dir: the dev launcher's services.env must not fill in anything.
        "TOUROPS_VAR_DIR": str(tmp_path_factory.mktemp("var")),
        "DJANGO_SETTINGS_MODULE": "tourops.settings",
        "DJANGO_DEBUG": "false",
        "TLS_ENABLED": "true",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
    }
    for name in ("DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    for name in (
        "PII_AEAD_KEYSET_FILE",
        "PII_BLIND_INDEX_KEYSET_FILE",
        "PII_AEAD_KEYSET",
        "PII_BLIND_INDEX_KEYSET",
    ):
        value = os.environ.get(name) or getattr(settings, name, None)
        if value:
            env[name] = value
    env.setdefault("DATABASE_URL", settings.DATABASE_URL)
    env.setdefault("REDIS_URL", settings.REDIS_URL)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_check_passes_at_warning_level(deploy_check):
    output = deploy_check.stdout + deploy_check.stderr
    assert "Traceback" not in output, output
    assert "security.W" not in output and "security.E" not in output, output
    assert deploy_check.returncode == 0, output
    assert "no issues" in output, output
