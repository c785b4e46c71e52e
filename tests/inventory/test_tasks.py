"""The beat tasks walk every active tenant and run the service in that tenant's context."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.utils import timezone

from inventory import tasks
from inventory.models import Allotment, Departure
from inventory.services import create_allotment, create_schedule, place_hold
from tenants.context import tenant_context
from tenants.models import Tenant
from tests.catalogue import make_option
from tests.inventory.conftest import age, build_world, seats_of
from tourops.celery import app

pytestmark = pytest.mark.django_db


def test_beat_schedule_lists_the_inventory_tasks():
    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {
        "inventory.sweep_expired_holds",
        "inventory.release_due_allotments",
        "inventory.extend_schedules",
    } <= names
    app.loader.import_default_modules()  # what a worker does at start: every app's tasks module
    for name in names:
        assert name in app.tasks, name


def test_sweep_expires_holds_of_every_active_tenant(monkeypatch):
    monkeypatch.setattr(tasks, "BATCH", 2)  # several batches per tenant
    worlds = [build_world(), build_world(), build_world()]
    for world in worlds:
        with tenant_context(world.tenant):
            held = [place_hold(world.departure, {"adult": 1}, "retail", f"k{n}") for n in range(5)]
        for each in held[:3]:
            age(world, each)
    Tenant.objects.filter(pk=worlds[2].tenant.pk).update(status=Tenant.Status.SUSPENDED)

    assert tasks.sweep_expired_holds() == 6

    assert [seats_of(world)[2] for world in worlds] == [2, 2, 5]


def test_release_due_allotments_task():
    world = build_world()
    with tenant_context(world.tenant):
        allotment = create_allotment(world.agency, world.departure, 8, timezone.now() + dt.timedelta(hours=1))
        Allotment.objects.filter(pk=allotment.pk).update(release_at=timezone.now() - dt.timedelta(seconds=1))
    assert tasks.release_due_allotments_task() == 1
    with tenant_context(world.tenant):
        assert Allotment.objects.get().status == "released"
    assert seats_of(world)[1] == 0


def test_extend_schedules_keeps_the_horizon_generated():
    world = build_world()
    start = timezone.now().date() + dt.timedelta(days=1)
    with tenant_context(world.tenant):
        option = make_option(world.tour, code="daily")
        create_schedule(option, start, start + dt.timedelta(days=400), 127, [dt.time(10)], 20)
        create_schedule(
            option, start - dt.timedelta(days=30), start - dt.timedelta(days=5), 127, [dt.time(11)], 20
        )

    made = tasks.extend_schedules()

    assert 180 <= made <= 184
    assert tasks.extend_schedules() == 0
    with tenant_context(world.tenant):
        assert Departure.objects.filter(option=option).count() == made
