"""Beat tasks for bookings: thin loops over active tenants."""

from __future__ import annotations

import logging

from celery import shared_task

from bookings.services import expire_lapsed_bookings
from tenants.context import tenant_context
from tenants.models import Tenant

logger = logging.getLogger(__name__)


@shared_task(name="bookings.expire_lapsed")
def expire_lapsed() -> int:
    expired = 0
    for tenant in Tenant.objects.filter(status=Tenant.Status.ACTIVE).order_by("id"):
        try:
            with tenant_context(tenant):
                expired += expire_lapsed_bookings()
        except Exception:  # one tenant's failure must not stop the others' expiry
            logger.exception("expiring lapsed bookings failed for tenant %s", tenant.slug)
    return expired
