"""Beat tasks for capacity: thin loops over active tenants, each batch in that tenant's context."""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task

from inventory.models import Schedule
from inventory.services import expire_holds, generate_departures, release_due_allotments
from tenants.context import tenant_context
from tenants.jobs import active_tenants, drain, for_each_active_tenant

logger = logging.getLogger(__name__)

BATCH = 500
# A sweep that still finds work after this many batches leaves the rest to the next run (a minute later).
MAX_BATCHES_PER_TENANT = 20


def _drain_each_tenant(service, what: str) -> int:
    return for_each_active_tenant(
        lambda tenant: drain(tenant, service, size=BATCH, max_batches=MAX_BATCHES_PER_TENANT), what=what
    )


@shared_task(name="inventory.sweep_expired_holds")
def sweep_expired_holds() -> int:
    total = _drain_each_tenant(expire_holds, "expiring holds")
    if total:
        logger.info("expired %d holds", total)
    return total


@shared_task(name="inventory.release_due_allotments")
def release_due_allotments_task() -> int:
    return _drain_each_tenant(release_due_allotments, "releasing due allotments")


@shared_task(name="inventory.extend_schedules")
def extend_schedules() -> int:
    """Keep the rolling horizon of departures generated for every schedule that has not ended."""
    created = 0
    for tenant in active_tenants():
        with tenant_context(tenant):
            # A day of slack: "today" in the tour's zone may still be yesterday in UTC.
            running = Schedule.objects.filter(end_date__gte=dt.date.today() - dt.timedelta(days=1))
            schedule_ids = list(running.values_list("id", flat=True))
        for schedule_id in schedule_ids:
            try:
                with tenant_context(tenant):  # one transaction per schedule
                    schedule = Schedule.objects.filter(pk=schedule_id).first()
                    if schedule is not None:
                        created += generate_departures(schedule)
            except Exception:  # one broken schedule must not stop the others; it is logged for staff
                logger.exception("could not extend schedule %s of tenant %s", schedule_id, tenant.pk)
    return created
