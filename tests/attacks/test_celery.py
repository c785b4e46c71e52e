"""Celery isolation: a real worker (in this process, its own thread and database connection) consuming from the
real Valkey broker. The tenant travels in the message header set at publish time; the task body runs in that
tenant's context and sees exactly that tenant's rows."""

from __future__ import annotations

import threading
import uuid

import pytest
from celery import chain
from celery.contrib.testing.worker import start_worker
from django.db import connection, connections

from tenants.context import current_tenant_id, tenant_context
from tenants.models import Membership
from tenants.roles import Role
from tenants.tasking import TENANT_HEADER
from tests.factories import make_member
from tourops.celery import app

TIMEOUT = 10

# The worker shares this process: tasks report what they saw here, keyed by a per-call id.
_seen: dict[str, dict] = {}
_done: dict[str, threading.Event] = {}


def _header(request) -> str | None:
    return getattr(request, TENANT_HEADER, None) or (request.headers or {}).get(TENANT_HEADER)


@app.task(name="tests.attacks.probe_memberships")
def probe_memberships(key: str, victim_id: str) -> None:
    """Report which Membership rows this task can see, and try to change and delete another tenant's one."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM tenants_membership")
            raw_count = cursor.fetchone()[0]
            cursor.execute("UPDATE tenants_membership SET role = 'owner' WHERE id = %s", [victim_id])
            raw_updated = cursor.rowcount
            cursor.execute("DELETE FROM tenants_membership WHERE id = %s", [victim_id])
            raw_deleted = cursor.rowcount
        seen = {
            "header": _header(probe_memberships.request),
            "context": str(current_tenant_id()) if current_tenant_id() else None,
            "ids": {str(pk) for pk in Membership._base_manager.values_list("pk", flat=True)},
            "tenants": {str(t) for t in Membership.objects.values_list("tenant_id", flat=True)},
            "raw_count": raw_count,
            "orm_updated": Membership._base_manager.filter(pk=victim_id).update(role=Role.OWNER),
            "raw_updated": raw_updated,
            "raw_deleted": raw_deleted,
        }
    except Exception as error:  # reported to the test, which fails on it
        seen = {"error": repr(error)}
    _seen[key] = seen
    _done[key].set()


@app.task(name="tests.attacks.close_connections")
def close_connections(key: str) -> None:
    connections.close_all()
    _done[key].set()


def _new_key() -> str:
    key = uuid.uuid4().hex
    _done[key] = threading.Event()
    return key


def _wait(key: str) -> dict:
    assert _done[key].wait(TIMEOUT), "the worker did not run the task"
    del _done[key]
    seen = _seen.pop(key)
    assert "error" not in seen, seen["error"]
    return seen


def _probe(victim_id, tenant=None) -> dict:
    key = _new_key()
    if tenant is None:
        probe_memberships.delay(key, str(victim_id))
    else:
        with tenant_context(tenant):
            probe_memberships.delay(key, str(victim_id))
    return _wait(key)


@pytest.fixture(scope="module")
def worker():
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=TIMEOUT) as running:
        yield running
        # The worker thread's database connection must not outlive the tests (the test database is dropped).
        key = _new_key()
        close_connections.delay(key)
        _done[key].wait(TIMEOUT)


def _ids(tenant) -> set[str]:
    with tenant_context(tenant):
        return {str(pk) for pk in Membership.objects.values_list("pk", flat=True)}


def _victim_unchanged(tenant, victim: Membership) -> None:
    with tenant_context(tenant):
        row = Membership.objects.get(pk=victim.pk)
    assert (row.role, row.is_active) == (victim.role, victim.is_active)


@pytest.fixture
def committed(transactional_db):
    from tests.factories import make_tenant

    a, b = make_tenant("a"), make_tenant("b")
    make_member(a, Role.SALES, "sales@a.example")
    make_member(b, Role.SALES, "sales@b.example")
    with tenant_context(a):
        a_victim = Membership.objects.get(user__email="sales@a.example")
    with tenant_context(b):
        b_victim = Membership.objects.get(user__email="sales@b.example")
    return a, b, a_victim, b_victim


def test_task_sees_only_the_tenant_it_was_queued_for(worker, committed):
    a, b, a_victim, b_victim = committed
    a_ids, b_ids = _ids(a), _ids(b)

    seen = _probe(a_victim.pk, tenant=b)
    assert seen["header"] == str(b.pk)  # attached at publish time, read back by the worker
    assert seen["context"] == str(b.pk)
    assert seen["ids"] == b_ids and not seen["ids"] & a_ids
    assert seen["tenants"] == {str(b.pk)}
    assert seen["raw_count"] == len(b_ids)
    assert (seen["orm_updated"], seen["raw_updated"], seen["raw_deleted"]) == (0, 0, 0)
    _victim_unchanged(a, a_victim)

    # Next task on the same worker thread and connection, queued without a tenant: nothing carried over.
    seen = _probe(a_victim.pk)
    assert seen["header"] is None and seen["context"] is None
    assert seen["ids"] == set() and seen["tenants"] == set()
    assert seen["raw_count"] == 0
    assert (seen["orm_updated"], seen["raw_updated"], seen["raw_deleted"]) == (0, 0, 0)
    _victim_unchanged(a, a_victim)

    # And the other way round.
    seen = _probe(b_victim.pk, tenant=a)
    assert seen["header"] == str(a.pk)
    assert seen["ids"] == a_ids
    assert (seen["orm_updated"], seen["raw_updated"], seen["raw_deleted"]) == (0, 0, 0)
    _victim_unchanged(b, b_victim)


def test_chained_and_linked_tasks_keep_the_tenant(worker, committed):
    """The next step of a chain and a link callback are published by the worker after the first task's body
    has returned (outside its tenant context); they must still carry the tenant."""
    a, b, a_victim, _ = committed
    b_ids = _ids(b)
    keys = [_new_key() for _ in range(4)]
    victim = str(a_victim.pk)
    with tenant_context(b):
        chain(probe_memberships.si(keys[0], victim), probe_memberships.si(keys[1], victim)).delay()
        probe_memberships.apply_async((keys[2], victim), link=probe_memberships.si(keys[3], victim))
    for key in keys:
        seen = _wait(key)
        assert seen["header"] == str(b.pk), key
        assert seen["ids"] == b_ids
        assert seen["orm_updated"] == 0
    _victim_unchanged(a, a_victim)
