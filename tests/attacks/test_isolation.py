"""Tenant isolation at the data layer, for every TenantModel: the ORM, raw SQL, and saving without a tenant.

Runs on the real PostgreSQL as the runtime role (not superuser, not BYPASSRLS, not owner). Tenant "a" is the
victim, tenant "b" the attacker; each test also checks b's own row so that a test cannot pass by seeing nothing.
"""

from __future__ import annotations

import psycopg.errors
import pytest
from django.conf import settings
from django.db import ProgrammingError, connection, transaction
from psycopg_pool import ConnectionPool

from tenants.context import NoTenantError, current_tenant_id, tenant_context
from tenants.rls import POLICY_NAME
from tests.attacks.rows import (
    ROW_SPECS,
    TENANT_MODELS,
    create_row,
    insert_statement,
    label,
    new_marker,
    spec_for,
)
from tests.factories import make_tenant

per_model = pytest.mark.parametrize("model", TENANT_MODELS, ids=label)

RLS_VIOLATION = "new row violates row-level security policy"


def _refused(excinfo, text: str) -> None:
    """The database refused with insufficient_privilege (42501) and the expected reason."""
    assert isinstance(excinfo.value.__cause__, psycopg.errors.InsufficientPrivilege), repr(excinfo.value)
    assert text in str(excinfo.value), str(excinfo.value)


def _tenant_ids(model) -> set:
    return set(model._base_manager.values_list("tenant_id", flat=True))


def test_every_tenant_model_has_a_row_builder():
    labels = {label(model) for model in TENANT_MODELS}
    assert "tenants.Membership" in labels  # discovery works at all
    missing = sorted(labels - set(ROW_SPECS))
    assert not missing, f"TenantModels without a row builder in tests/attacks/rows.py: {missing}"
    stale = sorted(set(ROW_SPECS) - labels)
    assert not stale, f"Row builders for models that are not TenantModels (any more): {stale}"


# --- 1. ORM -------------------------------------------------------------------------------------------------


@per_model
def test_orm_cannot_see_or_touch_other_tenants_rows(model, tenants):
    a, b = tenants
    spec = spec_for(model)
    victim = create_row(model, a, "a").obj
    own = create_row(model, b, "b").obj

    with tenant_context(b):
        visible = set(model.objects.values_list("pk", flat=True))
        assert own.pk in visible
        assert victim.pk not in visible
        assert victim.pk not in {row.pk for row in model._base_manager.all()}  # no tenant filter: RLS alone
        assert _tenant_ids(model) == {b.pk}
        assert model._base_manager.filter(tenant_id=a.pk).count() == 0
        with pytest.raises(model.DoesNotExist):
            model.objects.get(pk=victim.pk)
        with pytest.raises(model.DoesNotExist):
            model._base_manager.get(pk=victim.pk)

        if spec.append_only:
            with pytest.raises(ProgrammingError) as excinfo, transaction.atomic():
                model._base_manager.filter(pk=victim.pk).update(**spec.change)
            _refused(excinfo, "permission denied")
            # Django's delete() first collects the rows (and their dependants) with a SELECT, which RLS answers
            # with nothing, unless it can delete directly; either way nothing of a's goes.
            try:
                with transaction.atomic():
                    deleted = model._base_manager.filter(pk=victim.pk).delete()[0]
            except ProgrammingError as error:
                assert "permission denied" in str(error), str(error)
            else:
                assert deleted == 0
        else:
            assert model._base_manager.filter(pk=victim.pk).update(**spec.change) == 0
            assert model.objects.filter(pk=victim.pk).update(**spec.change) == 0
            assert model._base_manager.filter(pk=victim.pk).delete()[0] == 0
            # Nor can b move its own row into a's tenant.
            with pytest.raises(ProgrammingError) as excinfo, transaction.atomic():
                model._base_manager.filter(pk=own.pk).update(tenant_id=a.pk)
            _refused(excinfo, RLS_VIOLATION)
            assert model._base_manager.filter(pk=own.pk).update(**spec.change) == 1  # b's own row: allowed

    with tenant_context(a):
        unchanged = model._base_manager.get(pk=victim.pk)
        for name, value in spec.change.items():
            assert getattr(unchanged, name) == getattr(victim, name) != value


# --- 2. raw SQL ---------------------------------------------------------------------------------------------


@per_model
def test_raw_sql_cannot_see_or_touch_other_tenants_rows(model, tenants):
    a, b = tenants
    spec = spec_for(model)
    victim = create_row(model, a, "a").obj
    own = create_row(model, b, "b").obj
    table = connection.ops.quote_name(model._meta.db_table)

    with tenant_context(a), connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table} WHERE id = %s", [victim.pk])
        assert cursor.fetchone()[0] == 1  # the row is there for its own tenant

    with tenant_context(b), connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {table} WHERE id = %s", [victim.pk])
        assert cursor.fetchall() == []
        cursor.execute(f"SELECT count(*) FROM {table} WHERE tenant_id = %s", [a.pk])
        assert cursor.fetchone()[0] == 0
        cursor.execute(f"SELECT DISTINCT tenant_id FROM {table}")
        assert [row[0] for row in cursor.fetchall()] == [b.pk]
        cursor.execute(f"SELECT count(*) FROM {table} WHERE id = %s", [own.pk])
        assert cursor.fetchone()[0] == 1

        statements = [
            (f"UPDATE {table} SET tenant_id = tenant_id WHERE id = %s", [victim.pk]),
            (f"DELETE FROM {table} WHERE id = %s", [victim.pk]),
            (f"DELETE FROM {table} WHERE tenant_id = %s", [a.pk]),
        ]
        for sql, params in statements:
            if spec.append_only:
                with pytest.raises(ProgrammingError) as excinfo, transaction.atomic():
                    cursor.execute(sql, params)
                _refused(excinfo, "permission denied")
            else:
                cursor.execute(sql, params)
                assert cursor.rowcount == 0, sql

        # Insert a row claiming tenant a while acting as b: refused by the policy's WITH CHECK.
        with tenant_context(a):
            forged = spec.build(new_marker(model, "forged"))
        forged.tenant_id = a.pk
        with pytest.raises(ProgrammingError) as excinfo, transaction.atomic():
            cursor.execute(*insert_statement(forged, connection))
        _refused(excinfo, RLS_VIOLATION)
        # The same statement for b's own tenant works: the refusal above is the policy, not a broken INSERT.
        allowed = spec.build(new_marker(model, "b"))
        allowed.tenant_id = b.pk
        cursor.execute(*insert_statement(allowed, connection))
        assert cursor.rowcount == 1

    with tenant_context(a), connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table} WHERE id = %s", [victim.pk])
        assert cursor.fetchone()[0] == 1  # untouched
        cursor.execute(f"SELECT count(*) FROM {table} WHERE id = %s", [forged.pk])
        assert cursor.fetchone()[0] == 0  # never written


@per_model
def test_raw_sql_without_tenant_sees_nothing_and_cannot_insert(model, tenants):
    a, b = tenants
    spec = spec_for(model)
    create_row(model, a, "a")
    create_row(model, b, "b")
    table = connection.ops.quote_name(model._meta.db_table)

    with tenant_context(a), connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        assert cursor.fetchone()[0] >= 1

    assert current_tenant_id() is None
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('app.tenant_id', true)")
        assert cursor.fetchone()[0] in ("", None)
        cursor.execute(f"SELECT count(*) FROM {table}")
        assert cursor.fetchone()[0] == 0
        assert model._base_manager.count() == 0
        assert model.objects.count() == 0

        with tenant_context(a):
            orphan = spec.build(new_marker(model, "orphan"))
        for tenant_id in (a.pk, b.pk):
            orphan.tenant_id = tenant_id
            with pytest.raises(ProgrammingError) as excinfo, transaction.atomic():
                cursor.execute(*insert_statement(orphan, connection))
            _refused(excinfo, RLS_VIOLATION)


@pytest.mark.django_db(transaction=True)
def test_fresh_connection_without_tenant_sees_no_rows():
    """A connection that never set a tenant (not just one reset after a tenant block) sees nothing."""
    a = make_tenant("a")
    for model in TENANT_MODELS:
        create_row(model, a, "a")
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('app.tenant_id', true)")
        assert cursor.fetchone()[0] is None
        for model in TENANT_MODELS:
            cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(model._meta.db_table)}")
            assert cursor.fetchone()[0] == 0, model
    with tenant_context(a):
        assert all(model.objects.exists() for model in TENANT_MODELS)


@pytest.mark.django_db(transaction=True)
def test_pooled_connection_comes_back_without_the_previous_tenant():
    """The web server hands one pooled connection to request after request: the tenant set by one transaction
    must be gone for the next, which then sees nothing until it sets its own."""
    a = make_tenant("a")
    for model in TENANT_MODELS:
        create_row(model, a, "a")
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    tables = [connection.ops.quote_name(model._meta.db_table) for model in TENANT_MODELS]
    with ConnectionPool(kwargs=params, min_size=1, max_size=1, open=True) as pool:
        with pool.connection() as conn, conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", [str(a.pk)])
            assert all(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0 for table in tables)
            first = conn.info.backend_pid
        with pool.connection() as conn:
            assert conn.info.backend_pid == first  # the very same server session
            for table in tables:
                assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table


# --- the runtime role cannot switch row-level security off ---------------------------------------------------


@per_model
def test_runtime_role_cannot_bypass_row_level_security(model, tenants):
    a, _ = tenants
    create_row(model, a, "a")
    table = connection.ops.quote_name(model._meta.db_table)
    owner_role = connection.ops.quote_name(settings.DATABASE_OWNER_CREDENTIALS["USER"])
    attempts = [
        (f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY", "must be owner"),
        (f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY", "must be owner"),
        (f"DROP POLICY {POLICY_NAME} ON {table}", "must be owner"),
        (f"CREATE POLICY attack_open ON {table} USING (true) WITH CHECK (true)", "must be owner"),
        (f"SET LOCAL ROLE {owner_role}", "permission denied to set role"),
    ]
    with connection.cursor() as cursor:
        for sql, reason in attempts:
            with pytest.raises(ProgrammingError) as excinfo, transaction.atomic():
                cursor.execute(sql)
            _refused(excinfo, reason)
        # row_security = off does not bypass: the query is refused instead.
        with pytest.raises(ProgrammingError) as excinfo, transaction.atomic():
            cursor.execute("SET LOCAL row_security = off")
            cursor.execute(f"SELECT count(*) FROM {table}")
        _refused(excinfo, "row-level security")


# --- 8. saving without a tenant -----------------------------------------------------------------------------


@per_model
def test_save_without_tenant_raises_no_tenant_error(model, tenants):
    a, _ = tenants
    spec = spec_for(model)
    row = spec.build(new_marker(model, "none"))
    assert current_tenant_id() is None
    with pytest.raises(NoTenantError):
        row.save()
    assert row.tenant_id is None

    # Naming the tenant by hand outside a context does not help: the database refuses the row.
    row.tenant_id = a.pk
    with pytest.raises(ProgrammingError) as excinfo, transaction.atomic():
        row.save()
    _refused(excinfo, RLS_VIOLATION)

    with tenant_context(a):
        assert not model._base_manager.filter(pk=row.pk).exists()
        saved = spec.build(new_marker(model, "a"))
        saved.save()  # the same build works inside a context
        assert saved.tenant_id == a.pk
