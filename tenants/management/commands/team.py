"""List one tenant's team: every membership with the person's email, role and whether it is active.

    python manage.py team --tenant <slug> [--role <role>] [--active]

Runs in the tenant's context (row-level security applies), so it can only ever show that tenant's members.
"""

from __future__ import annotations

from tenants.management.base import TenantCommand
from tenants.models import Membership
from tenants.roles import Role


class Command(TenantCommand):
    help = "List a tenant's team members: email, role and whether the membership is active."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--role", choices=Role.values, help="Only members with this role.")
        parser.add_argument("--active", action="store_true", help="Only active memberships.")

    # ``tenant`` is positional-only: TenantCommand.handle passes the Tenant positionally *and* the --tenant slug
    # in ``options``, which a plain ``tenant`` parameter would receive twice (TypeError).
    def handle_tenant(self, tenant, /, *args, **options):
        memberships = Membership.objects.select_related("user").order_by("user__email")
        if options["role"]:
            memberships = memberships.filter(role=options["role"])
        if options["active"]:
            memberships = memberships.filter(is_active=True)
        rows = [(m.user.email, m.role, "yes" if m.is_active else "no") for m in memberships]

        headers = ("EMAIL", "ROLE", "ACTIVE")
        widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
        for row in [headers, *rows]:
            self.stdout.write(
                "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip()
            )
        active = sum(1 for row in rows if row[2] == "yes")
        noun = "member" if len(rows) == 1 else "members"
        self.stdout.write(f"{len(rows)} {noun} ({active} active) in {tenant.name} ({tenant.slug}).")
