"""``migrate`` as the owner role (tables belong to it); the app keeps running as the runtime role."""

from django.core.management.commands.migrate import Command as MigrateCommand

from tenants.db import as_owner


class Command(MigrateCommand):
    def handle(self, *args, **options):
        with as_owner(options["database"]):
            return super().handle(*args, **options)
