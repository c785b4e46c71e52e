"""``flush`` as the owner role: TRUNCATE is not granted to the runtime role (audit tables are append-only)."""

from django.core.management.commands.flush import Command as FlushCommand

from tenants.db import as_owner


class Command(FlushCommand):
    def handle(self, **options):
        with as_owner(options["database"]):
            return super().handle(**options)
