"""Celery tasks for bookings: beat jobs (thin loops over active tenants) and the email sender."""

from __future__ import annotations

from celery import shared_task

from bookings.models import Notification
from bookings.services import expire_lapsed_bookings, notifications
from tenants.context import require_tenant_id, tenant_bound, tenant_context
from tenants.jobs import for_each_active_tenant


@shared_task(name="bookings.expire_lapsed")
def expire_lapsed() -> int:
    def expire(tenant) -> int:
        with tenant_bound(tenant):
            return expire_lapsed_bookings()

    return for_each_active_tenant(expire, what="expiring lapsed bookings")


@shared_task(
    bind=True,
    name="bookings.send_notification",
    max_retries=None,  # bounded by the row's attempts (notifications.MAX_ATTEMPTS), not by Celery's count
    acks_late=True,
    soft_time_limit=60,
    time_limit=90,
)
def send_notification(self, notification_id: str, context_extra: dict | None = None):
    """Send one logged email; runs in the tenant of the header. Transient failures come back here with
    exponential backoff until the row's attempts run out (then the row says failed, with the error)."""
    require_tenant_id()  # without the header RLS would hide the row
    notification = Notification.objects.filter(pk=notification_id).first()
    if notification is None:
        return "missing"
    result = notifications.send(notification, context_extra=context_extra)
    if result.retry_in is None:
        return result.outcome
    # Not raised: the task body is one transaction, and raising would roll back the attempt just logged on the
    # row. The retry is already queued (with its countdown); an eager apply() runs the returned Retry at once.
    return self.retry(countdown=result.retry_in, throw=False)


@shared_task(name="bookings.send_reminders")
def send_reminders() -> int:
    """Beat (every 15 min): reminders 48 h before departure, and a new task for emails whose task was lost."""

    def remind(tenant) -> int:
        with tenant_context(tenant):
            return notifications.queue_due_reminders() + notifications.requeue_lost()

    return for_each_active_tenant(remind, what="queuing booking reminders")
