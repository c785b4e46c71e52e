"""Celery tasks of payments: thin — set the tenant, call the service. None of them runs inside a transaction,
because each calls a gateway between its short database steps."""

from __future__ import annotations

from celery import shared_task

from payments.gateways.base import GatewayUnavailable
from payments.services import installments, reconciliation, refunds, webhooks
from tenants.context import tenant_bound
from tenants.jobs import for_each_active_tenant

RETRY = {
    "autoretry_for": (GatewayUnavailable,),
    "retry_backoff": 10,
    "retry_backoff_max": 600,
    "max_retries": 8,
}


@shared_task(name="payments.send_refund", **RETRY)
def send_refund(tenant_id: str, refund_id: str) -> str:
    with tenant_bound(tenant_id):
        return refunds.send_refund(refund_id).status


@shared_task(name="payments.process_webhook_event", **RETRY)
def process_webhook_event(tenant_id: str, webhook_event_id: str) -> str:
    with tenant_bound(tenant_id):
        return webhooks.process(webhook_event_id)


@shared_task(name="payments.reconcile")
def reconcile() -> int:
    def work(tenant) -> int:
        with tenant_bound(tenant):
            return reconciliation.reconcile_unsettled()

    return for_each_active_tenant(work, what="payment reconciliation")


@shared_task(name="payments.charge_installments")
def charge_installments() -> int:
    def work(tenant) -> int:
        with tenant_bound(tenant):
            installments.remind_upcoming()
            return installments.charge_due_installments()

    return for_each_active_tenant(work, what="installment charging")
