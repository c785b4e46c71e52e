"""Money under real concurrency: clients and workers racing on one booking, through the real SDKs to the local
gateways, each thread on its own database connection.

- Tabs loading the checkout page at the same moment: each shows an attempt that is recorded and payable; paying
  each of them counts every payment once and gives back what is beyond the total.
- One payment settled at once by its webhooks, the confirmation page and reconciliation: recorded once.
- PayPal's return page loaded several times at once: captured once, never reported as failed.
- Installment runs overlapping (a redelivered task, two beats): one charge, one dunning step, one email; one
  reminder.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.utils import timezone

from bookings.links import manage_token
from bookings.models import Booking
from events.models import OutboxEvent
from payments.models import Installment, Payment, PaymentSchedule, Refund, WebhookEvent
from payments.services import installments, online, reconciliation, refunds, webhooks
from tenants.context import tenant_context
from tests.factories import host_of
from tests.payments.helpers import (
    DECLINED_OFF_SESSION,
    DEPOSIT,
    TOTAL,
    VISA,
    card_world,
    confirmed_with_saved_card,
    retail_booking,
    stripe_webhook,
)
from tests.races import run_together, unexpected

Provider = Payment.Provider
TABS = 6


@pytest.fixture
def world(transactional_db, fake_stripe, fake_paypal):
    return card_world()


def _events(booking: Booking, name: str) -> int:
    return OutboxEvent.objects.filter(aggregate_id=str(booking.pk), name=name).count()


def _client(index: int) -> Client:
    return Client(REMOTE_ADDR=f"198.51.100.{index + 1}")


def test_tabs_loading_the_checkout_at_once_each_show_a_live_attempt_and_paying_each_takes_the_total_once(
    world, fake_stripe
):
    with tenant_context(world.tenant):
        booking = retail_booking(world, "tabs")
        token = manage_token(booking)
    host = host_of(world.tenant)

    def load(index: int) -> list[object]:
        page = _client(index).get(f"/booking/{token}/pay/?amount=balance", HTTP_HOST=host)
        assert page.status_code == 200, page.status_code
        return re.findall(r'data-client-secret="([^"]+)"', page.content.decode())

    outcomes = run_together(load, TABS)
    assert not unexpected(outcomes), unexpected(outcomes)
    secrets = set(outcomes)
    with tenant_context(world.tenant):
        attempts = list(Payment.objects.filter(booking=booking))
        # Every page shows an attempt that is recorded and still payable; none was cancelled under another tab.
        assert 1 <= len(secrets) == len(attempts) <= TABS
        assert {attempt.status for attempt in attempts} == {"pending"}
        assert {attempt.amount for attempt in attempts} == {TOTAL}

    # The payer pays in every tab that shows its own attempt (how many there are depends on the race), and
    # their confirmation pages load at once: one total is kept, the rest goes back.
    paid = sorted(secrets)
    for secret in paid:
        assert fake_stripe.pay(secret, VISA)["status"] == "succeeded"
    with tenant_context(world.tenant):
        done = [
            f"/booking/{token}/pay/{payment.pk}/"
            for payment in attempts
            if payment.provider_reference in {secret.split("_secret_")[0] for secret in paid}
        ]

    outcomes = run_together(
        lambda index: [_client(index).get(done[index % len(done)], HTTP_HOST=host).status_code], TABS
    )
    assert outcomes == [200] * TABS
    with tenant_context(world.tenant):
        succeeded = Payment.objects.filter(booking=booking, status="succeeded")
        assert succeeded.count() == len(paid)
        assert _events(booking, "payment.processed") == len(paid)
        surplus = list(Refund.objects.filter(booking=booking, kind="surplus"))
        assert [refund.amount for refund in surplus] == [TOTAL] * (len(paid) - 1)
    for refund in surplus:  # each refund is sent by its own task, in its own transaction
        with tenant_context(world.tenant):
            refunds.send_refund(refund.pk)
    with tenant_context(world.tenant):
        fresh = Booking.objects.get(pk=booking.pk)
        assert (fresh.paid, fresh.balance) == (TOTAL, 0)


def test_one_payment_settled_at_once_by_webhooks_the_page_and_reconciliation_is_counted_once(
    world, fake_stripe
):
    with tenant_context(world.tenant):
        booking = retail_booking(world, "settle")
        attempt = online.start_checkout(booking, Provider.STRIPE)
        token = manage_token(booking)
    fake_stripe.pay(attempt.client_secret, VISA)
    with tenant_context(world.tenant):
        reference = Payment.objects.get(pk=attempt.payment_id).provider_reference
        # Two deliveries of the same event and one of another: stored as two events, each processed.
        for event_id in ("evt_race_1", "evt_race_1", "evt_race_2"):
            body, headers = stripe_webhook(
                "payment_intent.succeeded", {"id": reference, "object": "payment_intent"}, event_id=event_id
            )
            webhooks.receive(Provider.STRIPE, body, headers)
        events = list(WebhookEvent.objects.values_list("pk", flat=True))
        Payment.objects.filter(pk=attempt.payment_id).update(
            updated_at=timezone.now() - dt.timedelta(hours=1)
        )
    host = host_of(world.tenant)

    def settle(index: int) -> list[object]:
        if index < 4:
            with tenant_context(world.tenant):
                return [webhooks.process(events[index % len(events)])]
        if index < 6:
            with tenant_context(world.tenant):
                return [reconciliation.reconcile_unsettled()]
        return [_client(index).get(f"/booking/{token}/pay/{attempt.payment_id}/", HTTP_HOST=host).status_code]

    outcomes = run_together(settle, 8)
    assert not unexpected(outcomes), unexpected(outcomes)
    with tenant_context(world.tenant):
        payment = Payment.objects.get(pk=attempt.payment_id)
        fresh = Booking.objects.get(pk=booking.pk)
        assert (payment.status, payment.amount, fresh.paid) == ("succeeded", DEPOSIT, DEPOSIT)
        assert _events(booking, "payment.processed") == 1
        assert _events(booking, "payment.failed") == 0
        assert not Refund.objects.filter(booking=booking).exists()
        assert set(WebhookEvent.objects.values_list("outcome", flat=True)) == {"payment succeeded"}


def test_paypals_return_page_loaded_several_times_at_once_captures_once(world, fake_paypal):
    with tenant_context(world.tenant):
        booking = retail_booking(world, "paypal")
        token = manage_token(booking)
        attempt = online.start_checkout(
            booking, Provider.PAYPAL, return_url="https://t.example/b", cancel_url="https://t.example/"
        )
        order = Payment.objects.get(pk=attempt.payment_id).provider_reference
    fake_paypal.approve(order)
    host = host_of(world.tenant)

    def come_back(index: int) -> list[object]:
        page = _client(index).get(f"/booking/{token}/pay/paypal/return/?token={order}", HTTP_HOST=host)
        return [page.status_code]

    assert run_together(come_back, TABS) == [303] * TABS
    with tenant_context(world.tenant):
        payment = Payment.objects.get(pk=attempt.payment_id)
        assert (payment.status, payment.capture_reference != "") == ("succeeded", True)
        assert Booking.objects.get(pk=booking.pk).paid == DEPOSIT
        assert _events(booking, "payment.processed") == 1
        assert _events(booking, "payment.failed") == 0


def _overlapping_runs(world, day: dt.date) -> list[object]:
    def run(index: int) -> list[object]:
        with tenant_context(world.tenant):
            return [installments.charge_due_installments(today=day)]

    outcomes = run_together(run, 4)
    assert not unexpected(outcomes), unexpected(outcomes)
    return outcomes


def test_overlapping_installment_runs_charge_the_saved_card_once(world, fake_stripe):
    with tenant_context(world.tenant):
        booking = confirmed_with_saved_card(world, fake_stripe)
        balance = Installment.objects.get(schedule__booking=booking, sequence=2)
    _overlapping_runs(world, balance.due_on)
    with tenant_context(world.tenant):
        [charge] = Payment.objects.filter(booking=booking, off_session=True)
        assert (charge.status, charge.amount) == ("succeeded", TOTAL - DEPOSIT)
        assert Booking.objects.get(pk=booking.pk).paid == TOTAL
        assert _events(booking, "payment.processed") == 2  # the deposit and the balance


def test_overlapping_runs_on_a_declined_card_make_one_attempt_and_one_dunning_step(world, fake_stripe):
    with tenant_context(world.tenant):
        booking = confirmed_with_saved_card(world, fake_stripe, DECLINED_OFF_SESSION)
        balance = Installment.objects.get(schedule__booking=booking, sequence=2)
    day = balance.due_on
    _overlapping_runs(world, day)
    with tenant_context(world.tenant):
        [charge] = Payment.objects.filter(booking=booking, off_session=True)
        balance.refresh_from_db()
        assert charge.status == "failed"
        assert (balance.attempts, balance.dunning, balance.next_attempt_on) == (
            1,
            "failed",
            day + dt.timedelta(days=1),
        )
        assert _events(booking, "payment.installment_failed") == 1

    _overlapping_runs(world, day + dt.timedelta(days=1))  # the retry: the final notice, once
    with tenant_context(world.tenant):
        balance.refresh_from_db()
        assert (balance.attempts, balance.dunning) == (2, "final_notice")
        assert _events(booking, "payment.installment_failed") == 2

    _overlapping_runs(world, balance.next_attempt_on)  # the last failure: given up once, flagged
    with tenant_context(world.tenant):
        balance.refresh_from_db()
        assert (balance.attempts, balance.dunning) == (3, "gave_up")
        assert _events(booking, "payment.installment_unpaid") == 1
        assert Payment.objects.filter(booking=booking, off_session=True).count() == 3


def test_overlapping_runs_without_a_saved_card_ask_the_payer_once(world, fake_stripe):
    with tenant_context(world.tenant):
        booking = confirmed_with_saved_card(world, fake_stripe)
        PaymentSchedule.objects.filter(booking=booking).update(payment_method_reference="")
        balance = Installment.objects.get(schedule__booking=booking, sequence=2)
    _overlapping_runs(world, balance.due_on)
    with tenant_context(world.tenant):
        balance.refresh_from_db()
        assert (balance.attempts, balance.dunning) == (1, "failed")
        assert _events(booking, "payment.installment_failed") == 1
        assert not Payment.objects.filter(booking=booking, off_session=True).exists()


def test_overlapping_reminder_runs_remind_once(world, fake_stripe):
    with tenant_context(world.tenant):
        booking = confirmed_with_saved_card(world, fake_stripe)
        balance = Installment.objects.get(schedule__booking=booking, sequence=2)
    day = balance.due_on - dt.timedelta(days=3)

    def run(index: int) -> list[object]:
        with tenant_context(world.tenant):
            return [installments.remind_upcoming(day)]

    outcomes = run_together(run, 4)
    assert not unexpected(outcomes), unexpected(outcomes)
    assert sorted(outcomes) == [0, 0, 0, 1]
    with tenant_context(world.tenant):
        assert _events(booking, "payment.installment_upcoming") == 1
