from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenancy"

    def ready(self) -> None:
        from tenants import checks, signals  # noqa: F401 - registers checks and signal handlers

        post_migrate.connect(_grant_runtime_privileges, sender=self)


def _grant_runtime_privileges(sender, using, **kwargs) -> None:
    from django.db import connections

    from tenants.db import grant_runtime_privileges
    from tenants.models import AuditEvent, PlatformAuditEvent

    grant_runtime_privileges(
        connections[using], [AuditEvent._meta.db_table, PlatformAuditEvent._meta.db_table]
    )
