"""Test data built through the same services the app uses."""

from __future__ import annotations

import itertools

from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from tenants.context import tenant_context
from tenants.models import Membership, Tenant
from tenants.services import create_tenant

PASSWORD = "correct horse battery staple"
_counter = itertools.count()


def make_tenant(slug: str | None = None, **overrides) -> Tenant:
    slug = slug or f"tenant{next(_counter)}"
    fields = {
        "slug": slug,
        "name": f"{slug.title()} Tours",
        "kind": Tenant.Kind.TOUR_OPERATOR,
        "base_currency": "EUR",
        "time_zone": "Europe/Lisbon",
        "default_language": "en",
        "host": f"{slug}.testserver",
        "owner_email": f"owner@{slug}.example",
    }
    fields.update(overrides)
    return create_tenant(**fields)


def host_of(tenant: Tenant) -> str:
    return tenant.domains.get(is_primary=True).host


def make_user(email: str | None = None, password: str = PASSWORD, **extra) -> User:
    email = email or f"user{next(_counter)}@example.com"
    return User.objects.create_user(email, password, **extra)


def make_member(tenant: Tenant, role: str, email: str | None = None, password: str = PASSWORD) -> User:
    user = make_user(email, password)
    with tenant_context(tenant):
        Membership.objects.create(user=user, role=role)
    return user


def owner_of(tenant: Tenant, password: str = PASSWORD) -> User:
    with tenant_context(tenant):
        user = Membership.objects.get(role="owner").user
    user.set_password(password)
    user.save(update_fields=["password"])
    return user


def enrol_totp(user: User) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="test", confirmed=True)


def totp_now(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def obtain_tokens(client, tenant: Tenant, user: User, otp: str | None = None) -> dict:
    """Access and refresh tokens for ``user`` from ``tenant``'s token endpoint (asserts success)."""
    body = {"email": user.email, "password": PASSWORD}
    if otp is not None:
        body["otp"] = otp
    response = client.post(
        "/api/v1/auth/token/", body, content_type="application/json", HTTP_HOST=host_of(tenant)
    )
    assert response.status_code == 200, response.content
    return response.json()
