"""Celery app. The current tenant travels with every task in a message header and the task body runs inside
``tenant_context`` for it, so a task sees exactly what the request that queued it could see."""

from __future__ import annotations

import os

from celery import Celery, Task
from celery.signals import before_task_publish, worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tourops.settings")

TENANT_HEADER = "tenant_id"


def _tenant_of(request) -> str | None:
    return getattr(request, TENANT_HEADER, None) or (request.headers or {}).get(TENANT_HEADER)


class TenantTask(Task):
    def __call__(self, *args, **kwargs):
        tenant_id = _tenant_of(self.request)
        if not tenant_id:
            return super().__call__(*args, **kwargs)
        from tenants.context import tenant_context

        with tenant_context(tenant_id):
            return super().__call__(*args, **kwargs)


app = Celery("tourops", task_cls=TenantTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@before_task_publish.connect
def _attach_tenant(sender=None, headers=None, **kwargs) -> None:
    from tenants.context import current_tenant_id

    tenant_id = current_tenant_id()
    if tenant_id is None:
        # A link callback or the next step of a chain is published by the worker after the task body (and so its
        # tenant context) has returned: it belongs to the tenant of the task that sends it.
        task = app.current_worker_task
        tenant_id = _tenant_of(task.request) if task is not None else None
    if headers is not None and tenant_id is not None and TENANT_HEADER not in headers:
        headers[TENANT_HEADER] = str(tenant_id)


@worker_init.connect
def _check_keys(**kwargs) -> None:
    from core.pii.crypto import check_keys

    check_keys()


@worker_process_init.connect
def _warm_up_pdf_rendering(**kwargs) -> None:
    """Load WeasyPrint and its fonts when a worker process starts (about a second), not in the first booking's
    invoice."""
    from core.pdf import warm_up

    warm_up()
