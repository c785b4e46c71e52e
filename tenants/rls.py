"""Row-level security: the policy every tenant table carries, the migration operation that installs it, and the
inspection used by ``tenancy_check``."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import migrations

POLICY_NAME = "tenant_isolation"
TENANT_SETTING = "app.tenant_id"
_CURRENT_TENANT = f"(SELECT NULLIF(current_setting('{TENANT_SETTING}', true), '')::uuid)"
POLICY_PREDICATE = f"tenant_id = {_CURRENT_TENANT}"


def enable_sql(table: str) -> list[str]:
    quoted = f'"{table}"'
    return [
        f"ALTER TABLE {quoted} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {quoted} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS {POLICY_NAME} ON {quoted}",
        f"CREATE POLICY {POLICY_NAME} ON {quoted} USING ({POLICY_PREDICATE}) WITH CHECK ({POLICY_PREDICATE})",
    ]


def disable_sql(table: str) -> list[str]:
    quoted = f'"{table}"'
    return [
        f"DROP POLICY IF EXISTS {POLICY_NAME} ON {quoted}",
        f"ALTER TABLE {quoted} NO FORCE ROW LEVEL SECURITY",
        f"ALTER TABLE {quoted} DISABLE ROW LEVEL SECURITY",
    ]


class EnableRowLevelSecurity(migrations.operations.base.Operation):
    """Enable + force RLS on a TenantModel's table and create the tenant policy.

    ``makemigrations`` (overridden in this app) appends it after every CreateModel of a TenantModel, so a new
    model cannot forget it; ``tenancy_check`` fails if one slipped through anyway.
    """

    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name: str):
        self.model_name = model_name

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            for statement in enable_sql(model._meta.db_table):
                schema_editor.execute(statement)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            for statement in disable_sql(model._meta.db_table):
                schema_editor.execute(statement)

    def describe(self):
        return f"Enable row-level security on {self.model_name}"

    @property
    def migration_name_fragment(self):
        return f"rls_{self.model_name.lower()}"

    def deconstruct(self):
        return (self.__class__.__name__, [self.model_name], {})


@dataclass
class TableSecurity:
    table: str
    rls_enabled: bool
    rls_forced: bool
    policy_ok: bool

    @property
    def problems(self) -> list[str]:
        found = []
        if not self.rls_enabled:
            found.append("row level security is not enabled")
        if not self.rls_forced:
            found.append("row level security is not forced")
        if not self.policy_ok:
            found.append(
                f"policy {POLICY_NAME} is missing or does not compare tenant_id with {TENANT_SETTING}"
            )
        return found


def inspect_table(cursor, table: str) -> TableSecurity | None:
    cursor.execute(
        "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = to_regclass(%s)",
        [f'"{table}"'],
    )
    row = cursor.fetchone()
    if row is None:
        return None
    cursor.execute(
        "SELECT qual, with_check, cmd, permissive FROM pg_policies WHERE tablename = %s AND policyname = %s",
        [table, POLICY_NAME],
    )
    policy = cursor.fetchone()
    policy_ok = bool(
        policy
        and policy[2] == "ALL"
        and policy[3] == "PERMISSIVE"
        and all(clause and "tenant_id" in clause and TENANT_SETTING in clause for clause in policy[:2])
    )
    cursor.execute(
        "SELECT count(*) FROM pg_policies WHERE tablename = %s AND policyname <> %s", [table, POLICY_NAME]
    )
    # Any other permissive policy would widen access (policies are OR-ed).
    policy_ok = policy_ok and cursor.fetchone()[0] == 0
    return TableSecurity(table, bool(row[0]), bool(row[1]), policy_ok)
