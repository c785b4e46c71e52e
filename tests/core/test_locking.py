"""The one locking module: rows are locked only through it, in its global order, and a lock wait is bounded."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connections, transaction
from django.test import override_settings

from bookings import services
from bookings.locks import lock_booking
from bookings.models import Booking
from core.api import exception_handler
from core.locking import LOCK_ORDER, LockOrderViolation, LockTimeout, lock_row, lock_rows
from inventory.models import Departure, Hold
from partners.locks import lock_agency
from tenants.context import tenant_context
from tenants.models import Tenant
from tests.bookings.world import LEAD, World

ROOT = Path(settings.BASE_DIR)
SKIPPED_DIRS = {".venv", "var", "node_modules", ".git"}
ROW_LOCK_SQL = re.compile(r"FOR\s+(NO\s+KEY\s+)?UPDATE|FOR\s+(KEY\s+)?SHARE", re.IGNORECASE)


def _python_files():
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [name for name in subfolders if name not in SKIPPED_DIRS]
        yield from (Path(folder) / name for name in files if name.endswith(".py"))


def _locks_written_by_hand(path: Path, line: str) -> bool:
    """``select_for_update`` anywhere; a row-locking clause of SQL in the application's code (tests may look for
    one in the queries they capture), outside comments."""
    if "select_for_update" in line:
        return True
    code = line.split("#", 1)[0]
    return path.parts[0] != "tests" and bool(ROW_LOCK_SQL.search(code))


def test_rows_are_locked_nowhere_but_in_the_locking_module():
    allowed = {Path("core/locking.py"), Path(__file__).resolve().relative_to(ROOT)}
    found = [
        f"{relative}:{number}: {line.strip()}"
        for path in _python_files()
        if (relative := path.relative_to(ROOT)) not in allowed
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if _locks_written_by_hand(relative, line)
    ]
    assert found == [], "rows are locked through core.locking only:\n" + "\n".join(found)


def test_the_lock_order_names_real_models_once_each():
    assert len(set(LOCK_ORDER)) == len(LOCK_ORDER)
    for label in LOCK_ORDER:
        apps.get_model(label)  # LookupError for a label that names no model


@pytest.mark.django_db
def test_a_model_missing_from_the_order_cannot_be_locked():
    with transaction.atomic(), pytest.raises(LockOrderViolation, match="not in core.locking.LOCK_ORDER"):
        lock_rows(Tenant.objects.all())


@pytest.mark.django_db(transaction=True)
def test_rows_are_locked_inside_a_transaction():
    with pytest.raises(RuntimeError, match="inside a transaction"):
        lock_rows(Booking.objects.all())


@pytest.mark.django_db
def test_only_a_sweep_that_skips_locked_rows_locks_a_slice():
    world = World()
    with tenant_context(world.tenant):
        with pytest.raises(ValueError, match="skip_locked"):
            lock_rows(Departure.objects.order_by("starts_at")[:1])
        assert lock_rows(Departure.objects.order_by("starts_at")[:1], skip_locked=True) == [world.departure]


@pytest.mark.django_db
def test_a_lock_of_an_earlier_model_after_a_later_one_is_refused():
    world = World()
    with tenant_context(world.tenant):
        booking = world.trade_booking("order", 1)
    with tenant_context(world.tenant):
        lock_row(Departure, pk=world.departure.pk)
        with pytest.raises(LockOrderViolation, match="bookings.Booking before inventory.Departure"):
            lock_booking(booking)
    with tenant_context(world.tenant):  # the other way round, as the order says
        lock_agency(world.agency)
        lock_booking(booking)
        lock_rows(Hold.objects.filter(booking_item__booking=booking))
        lock_row(Departure, pk=world.departure.pk)


@pytest.mark.django_db
def test_rows_of_one_model_are_locked_in_primary_key_order():
    world = World()
    with tenant_context(world.tenant):
        first, second = sorted((world.trade_booking("a", 1), world.trade_booking("b", 1)), key=lambda b: b.pk)
    with tenant_context(world.tenant):
        lock_booking(second)
        lock_booking(second)  # locking a row again is no new lock
        with pytest.raises(LockOrderViolation, match="primary-key order"):
            lock_booking(first)
    with tenant_context(world.tenant):
        assert [booking.pk for booking in lock_rows(Booking.objects.all())] == [first.pk, second.pk]


@pytest.mark.django_db
def test_rows_this_transaction_made_or_changed_and_rows_skipped_if_locked_never_wait_so_are_exempt():
    world = World()
    with tenant_context(world.tenant):
        lock_row(Departure, pk=world.departure.pk)
        made_here = services.create_booking(  # its booking and hold rows are this transaction's own
            holds=[world.hold("new")], lead=LEAD, channel="retail", language="en"
        )
        lock_booking(made_here)
    with tenant_context(world.tenant):
        changed = Booking.objects.get(pk=made_here.pk)
        lock_row(Departure, pk=world.departure.pk)
        Booking.objects.filter(pk=changed.pk).update(agent_reference="changed here")
        lock_booking(changed)
        lock_rows(Booking.objects.all(), skip_locked=True)


@pytest.mark.django_db(transaction=True)
def test_waiting_longer_than_the_bound_for_a_row_is_a_retryable_busy_error_that_changes_nothing():
    world = World()
    with tenant_context(world.tenant):
        booking = world.trade_booking("busy", 1)
    locked, done = threading.Event(), threading.Event()
    problems = []

    def hold_the_agency():
        try:
            with tenant_context(world.tenant):
                lock_agency(world.agency)
                locked.set()
                done.wait(timeout=30)
        except Exception as error:  # reported below
            problems.append(error)
            locked.set()
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_agency)
    holder.start()
    try:
        assert locked.wait(timeout=30) and not problems
        with override_settings(LOCK_TIMEOUT_SECONDS=1), tenant_context(world.tenant):
            with pytest.raises(LockTimeout) as busy, transaction.atomic():
                Booking.objects.filter(pk=booking.pk).update(agent_reference="not kept")
                lock_agency(world.agency)
            assert (busy.value.status, busy.value.code) == (503, "busy")
            assert Booking.objects.get(pk=booking.pk).agent_reference == ""
    finally:
        done.set()
        holder.join(timeout=30)
    response = exception_handler(busy.value, {})
    assert (response.status_code, response["Retry-After"], response.data["error"]["code"]) == (
        503,
        "1",
        "busy",
    )
