"""Demo data for `make run`: two tenants with one staff user per role, and a platform administrator; each
tenant's catalogue (tours, prices, six months of departures) and a partner agency with its booker.

Idempotent: a second run creates nothing, changes nothing and prints the same logins."""

from __future__ import annotations

import base64

from django.core.management.base import BaseCommand
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import mfa
from accounts.models import User
from bookings.links import manage_url
from demo.bookings import seed_bookings
from demo.catalogue import seed_catalogue
from demo.data import (
    DEMO_PASSWORD,
    DEMO_TENANTS,
    PLATFORM_ADMIN,
)
from demo.payments import seed_payments
from tenants.context import tenant_context
from tenants.models import Membership, Tenant
from tenants.roles import MFA_REQUIRED_ROLES, Role
from tenants.services import create_tenant


def _email(role: str, slug: str) -> str:
    return f"{role.replace('_', '-')}@{slug}.demo"


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--port", default="8000", help="Port shown in the printed URLs.")

    @transaction.atomic
    def handle(self, *args, **options):
        rows, manage_pages = [], []
        admin = self._user(PLATFORM_ADMIN, "Platform Admin", superuser=True)
        rows.append(
            ("platform", f"http://platform.localhost:{options['port']}/admin/", admin, "platform admin")
        )
        for spec in DEMO_TENANTS:
            spec = dict(spec)
            legal = spec.pop("legal")
            tenant = Tenant.objects.filter(slug=spec["slug"]).first()
            if tenant is None:
                tenant = create_tenant(
                    **spec, host=f"{spec['slug']}.localhost", owner_email=_email(Role.OWNER, spec["slug"])
                )
                Tenant.objects.filter(pk=tenant.pk).update(**legal)
                tenant.refresh_from_db()
            with tenant_context(tenant):
                for role in Role:
                    user = self._user(_email(role, tenant.slug), f"{tenant.name} {role.label}")
                    if not Membership.objects.filter(user=user).exists():
                        Membership.objects.create(user=user, role=role)
                    if role in MFA_REQUIRED_ROLES:
                        self._enrol(user)
                    rows.append(
                        (
                            tenant.slug,
                            f"http://{tenant.slug}.localhost:{options['port']}/admin/",
                            user,
                            role.label,
                        )
                    )
                partner = seed_catalogue(tenant, DEMO_PASSWORD)
                rows.append(
                    (
                        tenant.slug,
                        f"http://{tenant.slug}.localhost:{options['port']}/api/v1/",
                        partner,
                        "Partner (API)",
                    )
                )
                seed_payments(tenant, options["port"])
                retail_booking = seed_bookings(tenant, partner)
                if retail_booking is not None:
                    manage_pages.append((tenant.slug, retail_booking))
        self._print(rows)
        for slug, booking in manage_pages:
            self.stdout.write(
                f"  {slug:<8} a traveller's booking {booking.reference} (lead email {booking.lead_email}): "
                f"{manage_url(booking)}"
            )

    def _user(self, email: str, full_name: str, superuser: bool = False) -> User:
        user = User.objects.filter(email=email).first()
        if user is not None and not user.has_usable_password():  # the owner create_tenant made
            user.set_password(DEMO_PASSWORD)
            user.full_name = full_name
            user.save(update_fields=["password", "full_name"])
        if user is None:
            user = User.objects.create_user(email, DEMO_PASSWORD, full_name=full_name)
            if superuser:
                user.is_superuser = user.is_staff = True
                user.save(update_fields=["is_superuser", "is_staff"])
                self._enrol(user)
        return user

    def _enrol(self, user: User) -> None:
        if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
            TOTPDevice.objects.create(user=user, name="Demo authenticator", confirmed=True)
            mfa.issue_recovery_codes(user)

    def _print(self, rows) -> None:
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD})")
        for site, url, user, role in rows:
            line = f"  {site:<8} {role:<15} {user.email:<26} {url}"
            device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
            if device is not None:
                secret = base64.b32encode(device.bin_key).decode().rstrip("=")
                static = StaticDevice.objects.filter(user=user).first()
                token = static.token_set.order_by("id").first() if static else None
                line += f"\n{'':<28}MFA: TOTP secret {secret}"
                if token is not None:
                    line += f" · recovery code {token.token}"
            self.stdout.write(line)
