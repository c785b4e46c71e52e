"""The current tenant travels with every Celery task: in a message header, and the task body runs inside
``tenant_context`` for it, so a task sees exactly what the code that queued it could see.

``enqueue`` queues a task by its name: a service that asks for work after its commit (an email to send, a refund to
carry out) need not import the tasks module, which imports the service."""

from __future__ import annotations

import uuid
from typing import Any

from celery import Task, current_app

from tenants.context import current_tenant_id, tenant_context

TENANT_HEADER = "tenant_id"


def tenant_of(request: Any) -> str | None:
    """The tenant a task request carries (Celery puts unknown headers on the request, or in ``headers``)."""
    return getattr(request, TENANT_HEADER, None) or (request.headers or {}).get(TENANT_HEADER)


class TenantTask(Task):
    """The base of every task: its body runs in the tenant of its header (and, without one, in no tenant)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tenant_id = tenant_of(self.request)
        if not tenant_id:
            return super().__call__(*args, **kwargs)
        with tenant_context(tenant_id):
            return super().__call__(*args, **kwargs)


def attach_tenant(headers: dict | None, worker_task: Task | None) -> None:
    """``before_task_publish``: a task queued in a tenant's context carries that tenant. A link callback or the
    next step of a chain is published by the worker after the task body (and so its tenant context) has returned:
    it belongs to the tenant of the task that sends it."""
    tenant_id: uuid.UUID | str | None = current_tenant_id()
    if tenant_id is None and worker_task is not None:
        tenant_id = tenant_of(worker_task.request)
    if headers is not None and tenant_id is not None and TENANT_HEADER not in headers:
        headers[TENANT_HEADER] = str(tenant_id)


def enqueue(
    task_name: str, *args: Any, tenant_id: uuid.UUID | str, countdown: int | None = None, **kwargs: Any
) -> None:
    """Queue the task named ``task_name`` for ``tenant_id``."""
    if task_name not in current_app.tasks:
        # A worker imports every app's tasks module when it starts; a web process does it on its first task.
        current_app.loader.import_default_modules()
    current_app.tasks[task_name].apply_async(
        args, kwargs=kwargs or None, headers={TENANT_HEADER: str(tenant_id)}, countdown=countdown
    )
