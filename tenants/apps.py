from django.apps import AppConfig, apps
from django.db import connections
from django.db.models.signals import post_migrate

from tenants.db import grant_runtime_privileges


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenancy"

    def ready(self) -> None:
        from tenants import checks, signals  # noqa: F401 - registers checks and signal handlers

        post_migrate.connect(_grant_runtime_privileges, sender=self)


def _grant_runtime_privileges(sender, using, **kwargs) -> None:
    """After every migrate: the runtime role may read and write rows; tables of models marked
    ``append_only = True`` (audit log, invoices) get INSERT and SELECT only."""
    append_only = [
        model._meta.db_table for model in apps.get_models() if getattr(model, "append_only", False)
    ]
    grant_runtime_privileges(connections[using], append_only)
