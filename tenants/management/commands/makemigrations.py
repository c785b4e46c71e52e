"""``makemigrations`` that adds EnableRowLevelSecurity for every CreateModel of a TenantModel."""

from django.apps import apps
from django.core.management.commands.makemigrations import Command as MakeMigrationsCommand
from django.db.migrations.operations import AddField, CreateModel

from tenants.models import TenantModel
from tenants.rls import EnableRowLevelSecurity


def _gains_tenant_column(operation) -> str | None:
    """The model name if this operation gives a table its ``tenant`` column."""
    if isinstance(operation, CreateModel) and any(name == "tenant" for name, _ in operation.fields):
        return operation.name
    if isinstance(operation, AddField) and operation.name == "tenant":
        return operation.model_name
    return None


def add_rls_operations(changes) -> None:
    """RLS goes in the migration that gives a TenantModel's table its ``tenant`` column, after it: the
    autodetector may create the model in one migration and add the foreign key in a later one (when the models
    of several new apps refer to each other)."""
    for app_label, migrations in changes.items():
        for migration in migrations:
            rls = []
            for operation in migration.operations:
                name = _gains_tenant_column(operation)
                if name is None:
                    continue
                try:
                    model = apps.get_model(app_label, name)
                except LookupError:
                    continue
                if issubclass(model, TenantModel):
                    rls.append(EnableRowLevelSecurity(model.__name__))
            migration.operations = [*migration.operations, *rls]


class Command(MakeMigrationsCommand):
    def write_migration_files(self, changes, *args, **kwargs):
        add_rls_operations(changes)
        return super().write_migration_files(changes, *args, **kwargs)
