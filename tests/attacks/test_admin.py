"""Back office isolation: b's staff cannot reach a's rows through the admin, and a's session is worth nothing on
b's host. Every page is requested on a real tenant host with a fully signed-in (MFA-verified) owner."""

from __future__ import annotations

import pytest
from django.test import Client

from tenants.admin_sites import tenant_admin_site
from tenants.context import tenant_context
from tenants.models import AuditEvent, Membership
from tenants.roles import Role
from tests.attacks.conftest import sign_in_owner
from tests.attacks.rows import TENANT_MODELS, create_row, label
from tests.factories import PASSWORD, host_of, owner_of

ADMIN_MODELS = [model for model in TENANT_MODELS if model in tenant_admin_site._registry]


def _admin_url(model, pk=None, action="change") -> str:
    base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    return base if pk is None else f"{base}{pk}/{action}/"


def _text(response) -> str:
    # Markers are lower case; some fields (promo codes) are stored in capitals.
    return response.content.decode().lower()


def test_tenant_models_are_in_the_back_office():
    assert Membership in ADMIN_MODELS  # the parametrised tests below have something to attack


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=label)
def test_admin_change_and_history_of_other_tenants_row_are_not_served(model, tenants, client):
    a, b = tenants
    host_b = host_of(b)
    victim = create_row(model, a, "a")
    own = create_row(model, b, "b")
    sign_in_owner(client, b)

    response = client.get(_admin_url(model, own.obj.pk), HTTP_HOST=host_b)
    assert response.status_code == 200
    assert own.marker in _text(response)  # b's own row is shown: the page does render rows

    for action in ("change", "history", "delete"):
        response = client.get(_admin_url(model, victim.obj.pk, action), HTTP_HOST=host_b, follow=True)
        assert victim.marker not in _text(response), action
        first_status = response.redirect_chain[0][1] if response.redirect_chain else response.status_code
        assert first_status in (302, 403, 404), (action, first_status)


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=label)
def test_admin_changelist_lists_only_own_tenants_rows(model, tenants, client):
    a, b = tenants
    host_b = host_of(b)
    victim = create_row(model, a, "a")
    own = create_row(model, b, "b")
    sign_in_owner(client, b)

    response = client.get(_admin_url(model), HTTP_HOST=host_b)
    assert response.status_code == 200
    page = _text(response)
    assert own.marker in page and str(own.obj.pk) in page
    assert victim.marker not in page
    assert str(victim.obj.pk) not in page
    assert "owner@a.example" not in page

    response = client.get(_admin_url(model), {"q": victim.marker}, HTTP_HOST=host_b)
    assert response.status_code == 200
    assert str(victim.obj.pk) not in _text(response)


def test_admin_post_cannot_change_other_tenants_membership(tenants, client):
    a, b = tenants
    with tenant_context(a):
        victim = Membership.objects.get(role=Role.OWNER)
    sign_in_owner(client, b)
    response = client.post(
        _admin_url(Membership, victim.pk),
        {"role": Role.READ_ONLY, "is_active": ""},
        HTTP_HOST=host_of(b),
    )
    assert response.status_code in (302, 403, 404)
    with tenant_context(a):
        victim.refresh_from_db()
    assert (victim.role, victim.is_active) == (Role.OWNER, True)


def test_other_tenants_session_cookie_gives_no_admin_access(tenants, client):
    a, b = tenants
    host_a, host_b = host_of(a), host_of(b)
    owner_a = sign_in_owner(client, a)
    with tenant_context(a):
        a_membership = Membership.objects.get(user=owner_a)
    assert client.get(_admin_url(Membership), HTTP_HOST=host_a).status_code == 200  # the cookie works on a

    for path in ("/admin/", _admin_url(Membership), _admin_url(Membership, a_membership.pk)):
        response = client.get(path, HTTP_HOST=host_b)
        assert response.status_code == 302, path  # sent to sign in, not served
        assert response["Location"].startswith("/admin/login/"), response["Location"]
    response = client.get("/api/v1/memberships/", HTTP_HOST=host_b)
    assert response.status_code in (401, 403)
    assert "owner@" not in _text(response)


def test_other_tenants_credentials_do_not_sign_in(tenants):
    a, b = tenants
    owner_a = owner_of(a)
    client = Client()
    response = client.post(
        "/accounts/login/", {"email": owner_a.email, "password": PASSWORD}, HTTP_HOST=host_of(b)
    )
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/", HTTP_HOST=host_of(b)).status_code == 302


def test_other_tenants_session_cannot_act_on_this_host(tenants, client):
    a, b = tenants
    owner_a = sign_in_owner(client, a)
    client.post("/accounts/mfa/recovery-codes/", HTTP_HOST=host_of(b))
    with tenant_context(b):
        actors = set(AuditEvent.objects.values_list("actor_label", flat=True))
    assert owner_a.email not in actors


def test_other_tenants_session_is_offered_the_sign_in_form(tenants, client):
    a, b = tenants
    sign_in_owner(client, a)
    response = client.get("/admin/", HTTP_HOST=host_of(b), follow=True)
    assert response.status_code == 200
    assert response.request["PATH_INFO"] == "/accounts/login/"
