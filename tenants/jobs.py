"""Platform jobs (beat tasks) walk the active tenants; each tenant's work runs in its own context, and one
tenant's failure (a deadlock, a bad row) is logged and ends only that tenant's turn."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable

from tenants.context import tenant_context
from tenants.models import Tenant

logger = logging.getLogger(__name__)


def active_tenants() -> list[Tenant]:
    return list(Tenant.objects.filter(status=Tenant.Status.ACTIVE).order_by("id"))


def for_each_active_tenant(work: Callable[[Tenant], int], *, what: str) -> int:
    """Sum of ``work(tenant)`` over the active tenants; ``what`` names the job in the log of a failure."""
    total = 0
    for tenant in active_tenants():
        try:
            total += work(tenant)
        except Exception:
            logger.exception("%s failed for tenant %s; the next run tries again", what, tenant.slug)
    return total


def drain(tenant: Tenant, batch: Callable[..., int], *, size: int, max_batches: int | None = None) -> int:
    """``batch(limit=size)`` in the tenant's context, one transaction per batch (locks are held for one batch
    only), until a batch does less than ``size`` (or after ``max_batches``: the next run does the rest)."""
    total = 0
    for _ in range(max_batches) if max_batches is not None else itertools.count():
        with tenant_context(tenant):
            done = batch(limit=size)
        total += done
        if done < size:
            break
    return total
