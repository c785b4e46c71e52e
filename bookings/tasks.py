"""Beat tasks for bookings: thin loops over active tenants."""

from __future__ import annotations

from celery import shared_task

from bookings.services import expire_lapsed_bookings
from tenants.context import tenant_context
from tenants.jobs import for_each_active_tenant


@shared_task(name="bookings.expire_lapsed")
def expire_lapsed() -> int:
    def expire(tenant) -> int:
        with tenant_context(tenant):
            return expire_lapsed_bookings()

    return for_each_active_tenant(expire, what="expiring lapsed bookings")
