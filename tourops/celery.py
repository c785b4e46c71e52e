"""Celery app. The current tenant travels with every task (``tenants.tasking``)."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import before_task_publish, worker_init, worker_process_init

from tenants.tasking import TenantTask, attach_tenant

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tourops.settings")

app = Celery("tourops", task_cls=TenantTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@before_task_publish.connect
def _attach_tenant(sender=None, headers=None, **kwargs) -> None:
    attach_tenant(headers, app.current_worker_task)


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
