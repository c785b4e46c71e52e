"""Management commands: a tenant command shows one tenant only, and tenancy_check notices a table that lost its
row-level security."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from tenants.context import tenant_context
from tenants.db import as_owner
from tenants.models import Membership
from tenants.rls import POLICY_NAME, enable_sql
from tenants.roles import Role
from tests.attacks.rows import TENANT_MODELS
from tests.factories import make_member, make_tenant

TENANT_TABLES = sorted({model._meta.db_table for model in TENANT_MODELS})


def _team(**options) -> str:
    out = StringIO()
    call_command("team", stdout=out, **options)
    return out.getvalue()


# --- 6. the team command ------------------------------------------------------------------------------------


def test_team_lists_only_the_named_tenants_members(tenants):
    a, b = tenants
    make_member(a, Role.SALES, "sales@a.example")
    make_member(b, Role.FINANCE, "finance@b.example")
    quiet = make_member(b, Role.READ_ONLY, "gone@b.example")
    with tenant_context(b):
        Membership.objects.filter(user=quiet).update(is_active=False)

    output = _team(tenant="b")
    lines = output.splitlines()
    assert lines[0].split() == ["EMAIL", "ROLE", "ACTIVE"]
    assert lines[1:4] == [
        line.rstrip()
        for line in (
            "finance@b.example  finance    yes   ",
            "gone@b.example     read_only  no    ",
            "owner@b.example    owner      yes   ",
        )
    ]
    assert lines[4] == "3 members (2 active) in B Tours (b)."
    assert "a.example" not in output

    assert "a.example" not in _team(tenant="b", role=Role.SALES)
    assert _team(tenant="b", active=True).count("@b.example") == 2
    assert _team(tenant="a").count("@a.example") == 2  # a's view: a's members, and only those
    assert "b.example" not in _team(tenant="a")


def test_team_refuses_an_unknown_or_missing_tenant(tenants):
    with pytest.raises(CommandError, match="No tenant with slug 'nope'"):
        call_command("team", tenant="nope", stdout=StringIO())
    with pytest.raises(CommandError, match="--tenant"):
        call_command("team", stdout=StringIO())


# --- 7. tenancy_check ---------------------------------------------------------------------------------------


def test_tenancy_check_passes_on_the_migrated_database(db):
    out = StringIO()
    call_command("tenancy_check", stdout=out)
    assert "Tenancy check passed" in out.getvalue()
    assert f"{len(TENANT_TABLES)} tenant tables" in out.getvalue()


BREAKAGES = {
    "no_force": ("ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY", "row level security is not forced"),
    "disable": ("ALTER TABLE {t} DISABLE ROW LEVEL SECURITY", "row level security is not enabled"),
    "drop_policy": (f"DROP POLICY {POLICY_NAME} ON {{t}}", f"policy {POLICY_NAME} is missing"),
    "open_policy": (
        "CREATE POLICY attack_open ON {t} USING (true) WITH CHECK (true)",
        f"policy {POLICY_NAME} is missing",
    ),
}


def _as_owner_execute(*statements: str) -> None:
    with as_owner(), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
@pytest.mark.parametrize("table", TENANT_TABLES)
def test_tenancy_check_names_a_table_that_lost_its_protection(table, breakage):
    sql, problem = BREAKAGES[breakage]
    quoted = connection.ops.quote_name(table)
    if breakage == "open_policy":
        # What the check guards against: with a second permissive policy, a tenant sees every tenant's rows.
        a, b = make_tenant("a"), make_tenant("b")
    try:
        _as_owner_execute(sql.format(t=quoted))
        if breakage == "open_policy" and table == Membership._meta.db_table:
            with tenant_context(b):
                assert Membership._base_manager.filter(tenant=a).exists()
        with pytest.raises(CommandError) as excinfo:
            call_command("tenancy_check", stdout=StringIO())
    finally:
        _as_owner_execute(f"DROP POLICY IF EXISTS attack_open ON {quoted}", *enable_sql(table))
    message = str(excinfo.value)
    assert f"{table}: {problem}" in message
    assert all(f"{other}:" not in message for other in TENANT_TABLES if other != table)
    call_command("tenancy_check", stdout=StringIO())  # restored
