"""Exit non-zero, naming the table, if any tenant table lacks FORCE RLS or its policy, or if the role the app
connects as could bypass RLS (superuser, BYPASSRLS, or owner of a tenant table)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from tenants.checks import tenant_models
from tenants.rls import inspect_table

# Platform tables that reference a tenant without belonging to one: routing reads Domain before any tenant is
# known. Every other table with a tenant_id column must be row-level secured.
PLATFORM_TABLES = frozenset({"tenants_domain"})


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args, **options):
        problems: list[str] = []
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
            )
            role, is_superuser, bypasses = cursor.fetchone()
            if is_superuser:
                problems.append(f"runtime role {role}: is a superuser (superusers bypass row-level security)")
            if bypasses:
                problems.append(f"runtime role {role}: has BYPASSRLS")
            tables = sorted({model._meta.db_table for model in tenant_models()})
            cursor.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') "
                "AND pg_has_role(current_user, c.relowner, 'USAGE') AND c.relname = ANY(%s)",
                [tables],
            )
            for (table,) in cursor.fetchall():
                problems.append(
                    f"{table}: owned by the runtime role {role} (owners can change or drop policies)"
                )
            cursor.execute(
                "SELECT DISTINCT c.relname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
                "AND c.relkind IN ('r', 'p') AND a.attname = 'tenant_id' AND NOT a.attisdropped"
            )
            with_tenant_column = {row[0] for row in cursor.fetchall()} - PLATFORM_TABLES
            for table in sorted(set(tables) | with_tenant_column):
                security = inspect_table(cursor, table)
                if security is None:
                    problems.append(f"{table}: table does not exist (migrations not applied?)")
                    continue
                problems.extend(f"{table}: {problem}" for problem in security.problems)
        if problems:
            raise CommandError("Tenancy check failed:\n  " + "\n  ".join(problems))
        self.stdout.write(
            self.style.SUCCESS(
                f"Tenancy check passed: {len(set(tables) | with_tenant_column)} tenant tables with forced RLS and "
                f"the tenant policy; role {role} cannot bypass them."
            )
        )
