"""Set-password links: the invitation a new team member receives, and "forgot your password"."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from accounts.models import User
from tenants.context import tenant_context
from tenants.models import AuditEvent, Membership, Tenant
from tests.accounts.helpers import PLATFORM_HOST, admin_reachable, client_for, password_login, sign_in
from tests.factories import PASSWORD, enrol_totp, host_of, make_member, make_tenant, owner_of

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "lantern orchard velvet 42"
RESET = "/accounts/password/reset/"


def _link(message) -> str:
    match = re.search(r"https?://[^/\s]+(/accounts/password/set/[^\s\"]+/)", message.body)
    assert match, message.body
    return match.group(1)


def _choose_password(client, link: str, password: str = NEW_PASSWORD):
    form = client.get(link, follow=True)  # Django swaps the token for a session marker and redirects
    assert form.status_code == 200 and b"Choose a password" in form.content, form.content[:400]
    return client.post(form.request["PATH_INFO"], {"new_password1": password, "new_password2": password})


def test_a_member_added_in_the_back_office_is_invited_and_can_choose_a_password(
    django_capture_on_commit_callbacks,
):
    tenant = make_tenant()
    owner = owner_of(tenant)
    client = client_for(host_of(tenant))
    sign_in(client, owner, enrol_totp(owner))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/tenants/membership/add/",
            {"email": "guide@example.com", "full_name": "Ana", "role": "operations"},
        )

    assert response.status_code == 302
    assert len(mail.outbox) == 1
    invitation = mail.outbox[0]
    assert invitation.to == ["guide@example.com"]
    assert tenant.name in invitation.subject
    assert invitation.alternatives and "text/html" in invitation.alternatives[0][1]
    newcomer = client_for(host_of(tenant))
    done = _choose_password(newcomer, _link(invitation))
    assert done.status_code == 302 and done["Location"] == "/accounts/password/set/done/"
    assert password_login(newcomer, "guide@example.com", NEW_PASSWORD)["Location"] == "/admin/"
    assert admin_reachable(newcomer)
    with tenant_context(tenant):
        assert AuditEvent.objects.filter(action="password_set", actor_label="guide@example.com").count() == 1


def test_an_existing_user_added_to_a_second_team_is_told_to_sign_in_without_a_link(
    django_capture_on_commit_callbacks,
):
    first, second = make_tenant(), make_tenant()
    person = make_member(first, "sales")
    owner = owner_of(second)
    client = client_for(host_of(second))
    sign_in(client, owner, enrol_totp(owner))

    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/tenants/membership/add/", {"email": person.email, "role": "sales"})

    assert len(mail.outbox) == 1
    assert "/accounts/password/set/" not in mail.outbox[0].body
    assert f"http://{host_of(second)}/accounts/login/" in mail.outbox[0].body


def test_forgotten_password_link_resets_it_once():
    tenant = make_tenant()
    user = make_member(tenant, "sales")
    client = client_for(host_of(tenant))

    response = client.post(RESET, {"email": user.email.upper()})

    assert response.status_code == 302 and response["Location"] == "/accounts/password/reset/sent/"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [user.email]
    link = _link(mail.outbox[0])
    assert _choose_password(client, link).status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD) and not user.check_password(PASSWORD)

    again = client_for(host_of(tenant)).get(link, follow=True)
    assert b"This link no longer works" in again.content


@pytest.mark.parametrize("who", ["unknown", "other_tenant", "inactive_member"])
def test_no_link_for_someone_who_may_not_sign_in_here_and_the_page_says_the_same(who):
    tenant, other = make_tenant(), make_tenant()
    email = "nobody@example.com"
    if who == "other_tenant":
        email = make_member(other, "owner").email
    elif who == "inactive_member":
        user = make_member(tenant, "sales")
        with tenant_context(tenant):
            Membership.objects.filter(user=user).update(is_active=False)
        email = user.email
    client = client_for(host_of(tenant))

    response = client.post(RESET, {"email": email})

    assert response.status_code == 302 and response["Location"] == "/accounts/password/reset/sent/"
    assert mail.outbox == []


def test_platform_host_sends_links_to_platform_administrators_only():
    admin = User.objects.create_superuser("root@platform.example", PASSWORD)
    member = make_member(make_tenant(), "owner")
    client = client_for(PLATFORM_HOST)

    client.post(RESET, {"email": member.email})
    client.post(RESET, {"email": admin.email})

    assert [message.to for message in mail.outbox] == [[admin.email]]


def test_a_weak_password_is_refused_and_the_old_one_kept():
    tenant = make_tenant()
    user = make_member(tenant, "sales")
    client = client_for(host_of(tenant))
    client.post(RESET, {"email": user.email})

    response = _choose_password(client, _link(mail.outbox[0]), password="12345678")

    assert response.status_code == 200
    assert b"too short" in response.content or b"too common" in response.content
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_bad_email_is_a_form_error():
    tenant = make_tenant()
    response = client_for(host_of(tenant)).post(RESET, {"email": "not an email"})
    assert response.status_code == 200
    assert b"valid email" in response.content
    assert mail.outbox == []


def _platform_admin_client():
    admin = User.objects.create_superuser("root@platform.example", PASSWORD)
    client = client_for(PLATFORM_HOST)
    sign_in(client, admin, enrol_totp(admin))
    return client


NEW_TENANT = {
    "slug": "atlas",
    "name": "Atlas Treks",
    "kind": "dmc",
    "base_currency": "EUR",
    "time_zone": "Europe/Lisbon",
    "default_language": "en",
    "host": "atlas.localhost",
    "owner_email": "founder@atlas.example",
}


def test_platform_admin_creates_a_tenant_and_its_first_owner_is_invited_on_the_tenants_site(
    django_capture_on_commit_callbacks,
):
    client = _platform_admin_client()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/tenants/tenant/add/", NEW_TENANT, SERVER_PORT="8000")

    assert response.status_code == 302, response.content[:2000]
    tenant = Tenant.objects.get(slug="atlas")
    assert list(tenant.domains.values_list("host", "is_primary")) == [("atlas.localhost", True)]
    with tenant_context(tenant):
        assert Membership.objects.get(user__email="founder@atlas.example").role == "owner"
    assert len(mail.outbox) == 1
    assert "http://atlas.localhost:8000/accounts/password/set/" in mail.outbox[0].body
    newcomer = client_for("atlas.localhost")
    assert _choose_password(newcomer, _link(mail.outbox[0])).status_code == 302
    assert password_login(newcomer, "founder@atlas.example", NEW_PASSWORD)["Location"].startswith(
        "/accounts/mfa/setup/"  # an owner enrols a second factor before reaching the back office
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("host", "taken.localhost"), ("slug", "Not A Slug"), ("base_currency", "XYZ"), ("owner_email", "nope")],
)
def test_platform_admin_bad_tenant_input_is_a_form_error_and_creates_nothing(
    field, value, django_capture_on_commit_callbacks
):
    existing = make_tenant()
    existing.domains.create(host="taken.localhost")
    client = _platform_admin_client()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/tenants/tenant/add/", {**NEW_TENANT, field: value})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors.get(field), response.context["adminform"].form.errors
    assert not Tenant.objects.filter(slug__in=["atlas", "Not A Slug"]).exists()
    assert mail.outbox == []


def test_adding_an_agency_bookers_address_to_the_team_is_refused_on_the_form_and_invites_nobody(
    django_capture_on_commit_callbacks,
):
    """Found by a probe: the service's refusal (an agency's booker, an address too long to be valid) was a 500."""
    from partners.services import add_partner_user
    from tests.catalogue import make_agency

    tenant = make_tenant()
    owner = owner_of(tenant)
    with tenant_context(tenant):
        add_partner_user(make_agency(), email="booker@agency.example", actor=owner)
    client = client_for(host_of(tenant))
    sign_in(client, owner, enrol_totp(owner))

    with django_capture_on_commit_callbacks(execute=True):
        booker = client.post(
            "/admin/tenants/membership/add/", {"email": "Booker@Agency.example", "role": "sales"}
        )
        too_long = client.post(
            "/admin/tenants/membership/add/", {"email": f"{'a' * 300}@example.com", "role": "sales"}
        )

    assert booker.status_code == 200 and "books for a partner agency" in booker.content.decode()
    assert too_long.status_code == 200 and "not valid" in too_long.content.decode()
    assert mail.outbox == []
    with tenant_context(tenant):
        assert Membership.objects.count() == 1  # the owner
