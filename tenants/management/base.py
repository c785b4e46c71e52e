from django.core.management.base import BaseCommand, CommandError

from tenants.context import tenant_context
from tenants.models import Tenant


class TenantCommand(BaseCommand):
    """A management command that works inside one tenant: ``--tenant <slug>`` is required and the command's
    ``handle_tenant`` runs in that tenant's context (one transaction)."""

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Slug of the tenant to act in.")

    def handle(self, *args, **options):
        slug = options["tenant"]
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {slug!r}.")
        with tenant_context(tenant):
            return self.handle_tenant(tenant, *args, **options)

    # ``tenant`` is positional-only: ``options`` holds the --tenant slug under the same name.
    def handle_tenant(self, tenant: Tenant, /, *args, **options):
        raise NotImplementedError
