from django.core.management.base import BaseCommand

from core.pii.rotation import encrypted_fields, reencrypt_queryset
from tenants.context import tenant_context
from tenants.models import Tenant, TenantModel


class Command(BaseCommand):
    help = "Re-encrypt personal data stored under older keys with the current primary key, tenant by tenant."

    def handle(self, *args, **options):
        total = 0
        for model, fields in encrypted_fields().items():
            if issubclass(model, TenantModel):
                for tenant in Tenant.objects.order_by("slug"):
                    with tenant_context(tenant):
                        total += reencrypt_queryset(model._base_manager.all(), fields)
            else:
                total += reencrypt_queryset(model._base_manager.all(), fields)
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {total} row(s)."))
