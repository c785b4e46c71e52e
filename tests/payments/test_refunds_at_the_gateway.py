"""Refunds made at the gateway itself (its dashboard) are recorded from the gateway's webhook, so that what a
booking has paid agrees with the money that went back; our own refunds whose answer was lost are recognised by
the id they carry and never counted twice; one that cannot be counted is left for staff, changing nothing."""

from __future__ import annotations

import json
import uuid

import pytest

from bookings.models import Booking, Notification
from events.models import OutboxEvent
from payments.gateways import tenant_accounts
from payments.handlers import email_refund
from payments.models import Payment, PaymentSchedule, Refund, WebhookEvent
from payments.services import online, refunds, schedules, webhooks
from tenants.context import tenant_context
from tests.payments.gateway_accounts import PAYPAL_KEYS
from tests.payments.helpers import TOTAL, VISA, card_world, retail_booking, stripe_webhook

Provider = Payment.Provider


@pytest.fixture
def world(db, fake_stripe, fake_paypal):
    return card_world()


def _paid(world, fake_stripe, key: str = "a") -> tuple[Booking, Payment]:
    booking = retail_booking(world, key)
    attempt = online.start_checkout(booking, Provider.STRIPE, choice="balance")
    fake_stripe.pay(attempt.client_secret, VISA)
    payment = online.sync_payment(Payment.objects.get(pk=attempt.payment_id))
    return Booking.objects.get(pk=booking.pk), payment


def _dashboard_refund(payment: Payment, amount: int):
    """What staff do in Stripe's dashboard: a refund with no reference of ours."""
    return tenant_accounts.gateway_for(Provider.STRIPE).refund(
        payment_reference=payment.provider_reference,
        capture_reference=payment.capture_reference,
        amount=amount,
        currency=payment.currency,
        idempotency_key=f"dashboard-{uuid.uuid4()}",
    )


def _deliver_stripe(event_type: str, refund_reference: str, event_id: str) -> str:
    body, headers = stripe_webhook(
        event_type, {"id": refund_reference, "object": "refund"}, event_id=event_id
    )
    assert webhooks.receive(Provider.STRIPE, body, headers) == "accepted"
    return webhooks.process(WebhookEvent.objects.get(event_id=event_id).pk)


def _paid_by_paypal(world, fake_paypal, key: str) -> tuple[Booking, Payment]:
    booking = retail_booking(world, key)
    attempt = online.start_checkout(
        booking,
        Provider.PAYPAL,
        choice="balance",
        return_url="https://t.example/",
        cancel_url="https://t.example/",
    )
    payment = Payment.objects.get(pk=attempt.payment_id)
    fake_paypal.approve(payment.provider_reference)
    return booking, online.capture_approved(payment)


def _paypal_money_back(payment: Payment, amount: int):
    """What PayPal's dashboard (or a dispute) does: money back from the capture, no reference of ours."""
    return tenant_accounts.gateway_for(Provider.PAYPAL).refund(
        payment_reference="",  # the dashboard knows the capture only
        capture_reference=payment.capture_reference,
        amount=amount,
        currency=payment.currency,
        idempotency_key=f"paypal-dashboard-{uuid.uuid4()}",
    )


def _deliver_paypal(fake_paypal, event_type: str, refund_reference: str, event_id: str) -> str:
    body = json.dumps(
        {"id": event_id, "event_type": event_type, "resource": {"id": refund_reference}}
    ).encode()
    headers = fake_paypal.sign(body, PAYPAL_KEYS["webhook_secret"])
    assert webhooks.receive(Provider.PAYPAL, body, headers) == "accepted"
    return webhooks.process(WebhookEvent.objects.get(event_id=event_id).pk)


def _refunded_events(booking: Booking) -> int:
    return OutboxEvent.objects.filter(aggregate_id=str(booking.pk), name="payment.refunded").count()


def test_a_refund_made_in_stripes_dashboard_is_recorded_once_as_a_gesture(world, fake_stripe):
    with tenant_context(world.tenant):
        booking, payment = _paid(world, fake_stripe)
        made = _dashboard_refund(payment, 2500)

        outcome = _deliver_stripe("refund.created", made.reference, "evt_dash_1")
        assert outcome == "refund succeeded (made at the gateway (dashboard))"
        [refund] = Refund.objects.filter(booking=booking)
        assert (refund.kind, refund.status, refund.amount, refund.provider_reference) == (
            "gateway",
            "succeeded",
            2500,
            made.reference,
        )
        fresh = Booking.objects.get(pk=booking.pk)
        assert (fresh.paid, Payment.objects.get(pk=payment.pk).refunded) == (TOTAL - 2500, 2500)
        assert schedules.outstanding(fresh) == 0  # given by staff: not asked for again
        assert _refunded_events(booking) == 1

        _deliver_stripe("refund.updated", made.reference, "evt_dash_2")  # another event about it
        assert Refund.objects.filter(booking=booking).count() == 1
        assert (Booking.objects.get(pk=booking.pk).paid, _refunded_events(booking)) == (TOTAL - 2500, 1)


def test_our_refund_whose_answer_was_lost_is_recognised_by_its_id_not_counted_twice(world, fake_stripe):
    with tenant_context(world.tenant):
        booking, payment = _paid(world, fake_stripe)
        [ours] = refunds.request_refund(
            booking, amount=3000, reason="Late pickup", request_key="r1", actor=None
        )
        # The task sent it and died before recording Stripe's answer.
        sent = tenant_accounts.gateway_for(Provider.STRIPE).refund(
            payment_reference=payment.provider_reference,
            capture_reference=payment.capture_reference,
            amount=ours.amount,
            currency=ours.currency,
            idempotency_key=ours.idempotency_key,
            reason=ours.reason,
            client_reference=str(ours.pk),
        )
        assert sent.client_reference == str(ours.pk)

        _deliver_stripe("refund.created", sent.reference, "evt_ours")
        [refund] = Refund.objects.filter(booking=booking)
        assert (refund.pk, refund.kind, refund.status, refund.provider_reference) == (
            ours.pk,
            "goodwill",
            "succeeded",
            sent.reference,
        )
        assert Booking.objects.get(pk=booking.pk).paid == TOTAL - 3000


def test_a_dashboard_refund_waits_while_one_of_ours_is_unanswered_then_converges(world, fake_stripe):
    with tenant_context(world.tenant):
        booking, payment = _paid(world, fake_stripe)
        [ours] = refunds.request_refund(
            booking, amount=TOTAL, reason="All of it", request_key="all", actor=None
        )
        made = _dashboard_refund(payment, 1000)  # meanwhile, someone refunds part of it in the dashboard

        with pytest.raises(refunds.OursStillUnanswered):  # a GatewayUnavailable: the task tries again later
            _deliver_stripe("refund.created", made.reference, "evt_wait")
        assert not Refund.objects.filter(booking=booking, kind="gateway").exists()

        assert refunds.send_refund(ours.pk).status == "failed"  # Stripe: more than is left on the charge
        assert webhooks.process(WebhookEvent.objects.get(event_id="evt_wait").pk) == (
            "refund succeeded (made at the gateway (dashboard))"
        )
        fresh = Booking.objects.get(pk=booking.pk)
        assert (fresh.paid, Payment.objects.get(pk=payment.pk).refunded) == (TOTAL - 1000, 1000)


def test_a_dashboard_refund_beyond_what_is_left_is_left_for_staff_and_changes_nothing(
    world, fake_stripe, caplog
):
    with tenant_context(world.tenant):
        booking, payment = _paid(world, fake_stripe)
        made = _dashboard_refund(payment, 1000)
        # Ours, answered and still pending at the gateway, has reserved all of the payment.
        Refund.objects.create(
            payment=payment,
            booking=booking,
            amount=TOTAL,
            currency="EUR",
            provider_reference="re_ours_pending",
            request_key="pending",
            idempotency_key="pending",
            reason="All of it",
        )
        Payment.objects.filter(pk=payment.pk).update(refunded=TOTAL)

        outcome = _deliver_stripe("refund.created", made.reference, "evt_over")
        assert outcome == f"refund {made.reference} not recorded: check it at the gateway"
        assert "check it at the gateway" in caplog.text
        assert not Refund.objects.filter(booking=booking, kind="gateway").exists()
        assert Booking.objects.get(pk=booking.pk).paid == TOTAL


def test_a_refund_the_gateway_cannot_find_is_acknowledged_not_retried_forever(world, fake_stripe):
    with tenant_context(world.tenant):
        # Stripe answers 404 resource_missing (the local fake: a bare invalid request).
        assert _deliver_stripe("refund.created", "re_nowhere", "evt_nowhere").startswith(
            "refund re_nowhere refused by the gateway: "
        )
        assert WebhookEvent.objects.get(event_id="evt_nowhere").processed_at is not None


def test_a_refund_of_a_payment_that_is_not_ours_is_acknowledged_and_ignored(world, fake_stripe):
    with tenant_context(world.tenant):
        booking, payment = _paid(world, fake_stripe)
        made = _dashboard_refund(payment, 1000)
        Payment.objects.filter(pk=payment.pk).update(provider_reference="pi_elsewhere", capture_reference="")
        outcome = _deliver_stripe("refund.created", made.reference, "evt_other")
        assert outcome == f"no payment of refund {made.reference} recorded here"
        assert not Refund.objects.exists()


def test_a_refund_made_in_paypals_dashboard_is_recorded(world, fake_paypal):
    with tenant_context(world.tenant):
        booking, payment = _paid_by_paypal(world, fake_paypal, "pp")
        made = _paypal_money_back(payment, 4000)
        _deliver_paypal(fake_paypal, "PAYMENT.CAPTURE.REFUNDED", made.reference, "WH-EVT-DASH")
        [refund] = Refund.objects.filter(booking=booking)
        assert (refund.kind, refund.status, refund.amount) == ("gateway", "succeeded", 4000)
        assert Booking.objects.get(pk=booking.pk).paid == TOTAL - 4000


def test_money_paypal_takes_back_is_recorded_as_a_reversal_still_owed_and_flagged(world, fake_paypal):
    with tenant_context(world.tenant):
        booking, payment = _paid_by_paypal(world, fake_paypal, "rev")
        taken = _paypal_money_back(payment, TOTAL)
        _deliver_paypal(fake_paypal, "PAYMENT.CAPTURE.REVERSED", taken.reference, "WH-EVT-REV")
        [refund] = Refund.objects.filter(booking=booking)
        assert (refund.kind, refund.status, refund.amount) == ("reversal", "succeeded", TOTAL)
        fresh = Booking.objects.get(pk=booking.pk)
        assert (fresh.paid, schedules.outstanding(fresh)) == (0, TOTAL)  # not a gesture: still owed
        assert PaymentSchedule.objects.get(booking=booking).needs_attention  # automatic charges paused
        event = OutboxEvent.objects.get(aggregate_id=str(booking.pk), name="payment.refunded")
        email_refund(event)
        assert not Notification.objects.filter(booking=booking, kind="refund").exists()  # nothing we refunded
