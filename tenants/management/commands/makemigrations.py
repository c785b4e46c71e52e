"""``makemigrations`` that adds EnableRowLevelSecurity after every CreateModel of a TenantModel."""

from django.apps import apps
from django.core.management.commands.makemigrations import Command as MakeMigrationsCommand
from django.db.migrations.operations import CreateModel

from tenants.models import TenantModel
from tenants.rls import EnableRowLevelSecurity


def add_rls_operations(changes) -> None:
    for app_label, migrations in changes.items():
        for migration in migrations:
            operations = []
            for operation in migration.operations:
                operations.append(operation)
                if isinstance(operation, CreateModel):
                    try:
                        model = apps.get_model(app_label, operation.name)
                    except LookupError:
                        continue
                    if issubclass(model, TenantModel):
                        operations.append(EnableRowLevelSecurity(operation.name))
            migration.operations = operations


class Command(MakeMigrationsCommand):
    def write_migration_files(self, changes, *args, **kwargs):
        add_rls_operations(changes)
        return super().write_migration_files(changes, *args, **kwargs)
