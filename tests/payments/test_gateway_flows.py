"""Payments through the gateways, end to end in the services, over HTTP through the real SDKs to the local fakes:
checkout by card (success, decline then retry, 3-D Secure), Stripe down → circuit open → PayPal, PayPal approve
and capture, refunds at the gateway (partial, across two payments, sent twice), webhooks as triggers (replays,
forgeries, out-of-order events), reconciliation after a crash, installments charged off-session with retries,
dunning and the terms' outcome, money received for nothing given back, and amounts in JPY and KWD."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from bookings import services
from bookings.models import Booking
from core.errors import DomainError
from events.models import OutboxEvent
from payments.gateways.base import InvalidWebhook
from payments.models import Installment, Payment, PaymentSchedule, PaymentTerms, Refund, WebhookEvent
from payments.services import installments, online, reconciliation, refunds, webhooks
from tenants.context import tenant_context
from tests.bookings.world import World
from tests.payments.gateway_accounts import STRIPE_KEYS
from tests.payments.helpers import (
    DECLINED,
    DECLINED_OFF_SESSION,
    DEPOSIT,
    THREE_D_SECURE,
    TOTAL,
    VISA,
    card_world,
    confirmed_with_saved_card,
    retail_booking,
    stripe_webhook,
)

Provider = Payment.Provider


@pytest.fixture
def world(db, fake_stripe, fake_paypal):
    return card_world()


def _booking(world: World, key: str = "a", adults: int = 2) -> Booking:
    return retail_booking(world, key, adults)


def _fresh(booking: Booking) -> Booking:
    return Booking.objects.get(pk=booking.pk)


def _pay(fake_stripe, attempt, card: str = VISA) -> dict:
    return fake_stripe.pay(attempt.client_secret, card)


def _events(booking: Booking, name: str) -> int:
    return OutboxEvent.objects.filter(aggregate_id=str(booking.pk), name=name).count()


# --- checkout by card ----------------------------------------------------------------------------------------


def test_a_card_deposit_is_recorded_from_the_gateway_and_the_card_kept_for_the_balance(world, fake_stripe):
    with tenant_context(world.tenant):
        booking = _booking(world)
        attempt = online.start_checkout(booking, Provider.STRIPE)
        assert (attempt.amount, attempt.currency) == (DEPOSIT, "EUR")
        assert attempt.client_secret and attempt.publishable_key == STRIPE_KEYS["public_key"]
        assert _fresh(booking).paid == 0  # nothing is counted before the gateway says so

        _pay(fake_stripe, attempt)
        payment = online.sync_payment(Payment.objects.get(pk=attempt.payment_id))
        assert (payment.status, payment.amount, payment.capture_reference[:3]) == (
            "succeeded",
            DEPOSIT,
            "ch_",
        )
        fresh = _fresh(booking)
        assert (fresh.paid, fresh.balance) == (DEPOSIT, TOTAL - DEPOSIT)
        assert _events(booking, "payment.processed") == 1
        schedule = PaymentSchedule.objects.get(booking=booking)
        assert schedule.customer_reference.startswith(
            "cus_"
        ) and schedule.payment_method_reference.startswith("pm_")

        online.sync_payment(payment)  # the webhook and the confirmation page both sync: counted once
        assert (_fresh(booking).paid, _events(booking, "payment.processed")) == (DEPOSIT, 1)


def test_reloading_the_page_offers_the_same_attempt_and_another_amount_replaces_it(world, fake_stripe):
    with tenant_context(world.tenant):
        booking = _booking(world)
        first = online.start_checkout(booking, Provider.STRIPE)
        again = online.start_checkout(booking, Provider.STRIPE)
        assert (again.payment_id, again.client_secret) == (first.payment_id, first.client_secret)
        whole = online.start_checkout(booking, Provider.STRIPE, choice="balance")
        assert whole.amount == TOTAL and whole.payment_id != first.payment_id
        assert Payment.objects.get(pk=first.payment_id).status == "cancelled"


def test_a_declined_card_fails_the_attempt_and_the_payer_may_retry_with_another(world, fake_stripe):
    with tenant_context(world.tenant):
        booking = _booking(world)
        attempt = online.start_checkout(booking, Provider.STRIPE)
        declined = _pay(fake_stripe, attempt, DECLINED)
        assert declined["error"]["code"] == "card_declined"
        payment = online.sync_payment(Payment.objects.get(pk=attempt.payment_id))
        assert (payment.status, payment.failure_code) == ("failed", "card_declined")
        assert _fresh(booking).paid == 0
        # The page keeps its PaymentIntent: a second card on it succeeds and the gateway's truth wins.
        _pay(fake_stripe, attempt, VISA)
        assert online.sync_payment(payment).status == "succeeded"
        assert _fresh(booking).paid == DEPOSIT


def test_three_d_secure_waits_for_the_payer_then_succeeds(world, fake_stripe):
    with tenant_context(world.tenant):
        booking = _booking(world)
        attempt = online.start_checkout(booking, Provider.STRIPE)
        assert _pay(fake_stripe, attempt, THREE_D_SECURE)["status"] == "requires_action"
        payment = online.sync_payment(Payment.objects.get(pk=attempt.payment_id))
        assert (payment.status, _fresh(booking).paid) == ("pending", 0)
        fake_stripe.authenticate(
            attempt.client_secret.split("_secret_")[0], attempt.client_secret, success=True
        )
        assert online.sync_payment(payment).status == "succeeded"


def test_checkout_keeps_the_seats_while_the_payer_pays(world, fake_stripe):
    with tenant_context(world.tenant):
        booking = _booking(world)
        item = booking.items.select_related("hold").get()
        item.hold.expires_at = timezone.now() + dt.timedelta(minutes=2)
        item.hold.save(update_fields=["expires_at"])
        online.start_checkout(booking, Provider.STRIPE)
        item.hold.refresh_from_db()
        assert item.hold.expires_at >= timezone.now() + services.PAYMENT_GRACE - dt.timedelta(seconds=5)
        assert _fresh(booking).expires_at == item.hold.expires_at


# --- Stripe down → PayPal ------------------------------------------------------------------------------------


def test_stripe_down_opens_the_circuit_and_paypal_takes_the_payment(world, fake_stripe, fake_paypal):
    with tenant_context(world.tenant):
        booking = _booking(world)
        fake_stripe.outage("down")
        try:
            for _ in range(5):
                with pytest.raises(online.CheckoutUnavailable):
                    online.start_checkout(booking, Provider.STRIPE)
            assert online.breaker(Provider.STRIPE).state() == "open"
            fake_stripe.outage("up")
            with pytest.raises(online.CheckoutUnavailable):  # open: Stripe is not even asked
                online.start_checkout(booking, Provider.STRIPE)
        finally:
            fake_stripe.outage("up")
        assert (
            Payment.objects.filter(
                provider=Provider.STRIPE, status="failed", failure_code="unavailable"
            ).count()
            == 5
        )

        attempt = online.start_checkout(
            booking, Provider.PAYPAL, return_url="https://t.example/back", cancel_url="https://t.example/"
        )
        assert attempt.approve_url.startswith(fake_paypal.base_url)
        fake_paypal.approve(Payment.objects.get(pk=attempt.payment_id).provider_reference)
        payment = online.capture_approved(Payment.objects.get(pk=attempt.payment_id))
        assert (payment.status, payment.method, payment.capture_reference != "") == (
            "succeeded",
            "paypal",
            True,
        )
        assert online.capture_approved(payment).pk == payment.pk  # reloading the return page captures once
        assert _fresh(booking).paid == DEPOSIT


def test_a_decline_is_not_an_outage(world, fake_stripe):
    with tenant_context(world.tenant):
        for n in range(6):
            booking = _booking(world, f"d{n}", adults=1)
            attempt = online.start_checkout(booking, Provider.STRIPE)
            _pay(fake_stripe, attempt, DECLINED)
            online.sync_payment(Payment.objects.get(pk=attempt.payment_id))
        assert online.breaker(Provider.STRIPE).state() == "closed"


def test_an_approved_paypal_order_left_uncaptured_is_captured_by_reconciliation(world, fake_paypal):
    with tenant_context(world.tenant):
        booking = _booking(world)
        attempt = online.start_checkout(
            booking, Provider.PAYPAL, return_url="https://t.example/b", cancel_url="https://t.example/"
        )
        payment = Payment.objects.get(pk=attempt.payment_id)
        fake_paypal.approve(payment.provider_reference)  # ... and the payer closed the tab before coming back
        Payment.objects.filter(pk=payment.pk).update(updated_at=timezone.now() - dt.timedelta(hours=1))
        assert reconciliation.reconcile_unsettled() == 1
        assert Payment.objects.get(pk=payment.pk).status == "succeeded"
        assert _fresh(booking).paid == DEPOSIT


# --- crashes and reconciliation --------------------------------------------------------------------------------


def test_a_crash_after_the_payer_paid_converges_through_reconciliation(world, fake_stripe):
    with tenant_context(world.tenant):
        booking = _booking(world)
        attempt = online.start_checkout(booking, Provider.STRIPE)
        _pay(fake_stripe, attempt)  # the confirmation page never loaded, the webhook was lost
        Payment.objects.filter(pk=attempt.payment_id).update(
            updated_at=timezone.now() - dt.timedelta(hours=1)
        )
        reconciliation.reconcile_unsettled()
        assert Payment.objects.get(pk=attempt.payment_id).status == "succeeded"
        assert _fresh(booking).paid == DEPOSIT


def test_an_attempt_the_gateway_never_answered_is_abandoned_by_reconciliation(world):
    with tenant_context(world.tenant):
        booking = _booking(world)
        # The process died between "attempt recorded" and "gateway answered": no reference was ever stored, so
        # no client secret left the server and nobody can pay it.
        stuck = Payment.objects.create(
            booking=booking,
            provider=Provider.STRIPE,
            method="card",
            amount=DEPOSIT,
            currency="EUR",
            idempotency_key="checkout-stuck",
        )
        Payment.objects.filter(pk=stuck.pk).update(
            created_at=timezone.now() - dt.timedelta(hours=2),
            updated_at=timezone.now() - dt.timedelta(hours=2),
        )
        reconciliation.reconcile_unsettled()
        stuck.refresh_from_db()
        assert (stuck.status, stuck.failure_code) == ("cancelled", "abandoned")
        assert _fresh(booking).paid == 0


# --- webhooks ------------------------------------------------------------------------------------------------------


def test_a_webhook_is_a_trigger_the_payment_is_fetched_and_replays_are_ignored(world, fake_stripe):
    with tenant_context(world.tenant):
        booking = _booking(world)
        attempt = online.start_checkout(booking, Provider.STRIPE)
        reference = Payment.objects.get(pk=attempt.payment_id).provider_reference
        # A forged "succeeded" for an unpaid intent: verified, stored, but the gateway says it is not paid.
        body, headers = stripe_webhook(
            "payment_intent.succeeded",
            {"id": reference, "object": "payment_intent", "status": "succeeded"},
            event_id="evt_1",
        )
        assert webhooks.receive(Provider.STRIPE, body, headers) == "accepted"
        stored = WebhookEvent.objects.get(event_id="evt_1")
        webhooks.process(stored.pk)
        assert (Payment.objects.get(pk=attempt.payment_id).status, _fresh(booking).paid) == ("pending", 0)

        _pay(fake_stripe, attempt)
        body, headers = stripe_webhook(
            "payment_intent.succeeded", {"id": reference, "object": "payment_intent"}, event_id="evt_2"
        )
        assert webhooks.receive(Provider.STRIPE, body, headers) == "accepted"
        assert webhooks.receive(Provider.STRIPE, body, headers) == "duplicate"  # a replay
        webhooks.process(WebhookEvent.objects.get(event_id="evt_2").pk)
        assert _fresh(booking).paid == DEPOSIT
        # An older "failed" event arriving last changes nothing: the gateway's truth is succeeded.
        body, headers = stripe_webhook(
            "payment_intent.payment_failed", {"id": reference, "object": "payment_intent"}, event_id="evt_0"
        )
        webhooks.receive(Provider.STRIPE, body, headers)
        webhooks.process(WebhookEvent.objects.get(event_id="evt_0").pk)
        assert (Payment.objects.get(pk=attempt.payment_id).status, _fresh(booking).paid) == (
            "succeeded",
            DEPOSIT,
        )

        body, headers = stripe_webhook(
            "customer.created", {"id": "cus_x", "object": "customer"}, event_id="evt_3"
        )
        assert webhooks.receive(Provider.STRIPE, body, headers) == "ignored"


def test_forged_and_stale_webhooks_are_refused_and_stored_nowhere(world):
    with tenant_context(world.tenant):
        body, headers = stripe_webhook(
            "payment_intent.succeeded", {"id": "pi_x"}, event_id="evt_f", secret="whsec_wrong"
        )
        with pytest.raises(InvalidWebhook):
            webhooks.receive(Provider.STRIPE, body, headers)
        body, headers = stripe_webhook("payment_intent.succeeded", {"id": "pi_x"}, event_id="evt_s", age=3600)
        with pytest.raises(InvalidWebhook):
            webhooks.receive(Provider.STRIPE, body, headers)
        assert not WebhookEvent.objects.exists()


def test_the_webhook_endpoint_answers_400_to_a_forgery_and_200_to_a_signed_event(world, client):
    from tests.factories import host_of

    host = host_of(world.tenant)
    body, headers = stripe_webhook("customer.created", {"id": "cus_x"}, event_id="evt_http")
    response = client.post(
        "/payments/webhooks/stripe/",
        body,
        content_type="application/json",
        HTTP_HOST=host,
        HTTP_STRIPE_SIGNATURE=headers["Stripe-Signature"],
    )
    assert (response.status_code, response.json()) == (200, {"received": "ignored"})
    forged = client.post(
        "/payments/webhooks/stripe/",
        body,
        content_type="application/json",
        HTTP_HOST=host,
        HTTP_STRIPE_SIGNATURE=headers["Stripe-Signature"].replace("v1=", "v1=0"),
    )
    assert forged.status_code == 400
    assert (
        client.post(
            "/payments/webhooks/nope/", body, content_type="application/json", HTTP_HOST=host
        ).status_code
        == 404
    )


# --- refunds at the gateway ------------------------------------------------------------------------------------


def _paid_by_card(world, fake_stripe, key="a", choice="balance") -> tuple[Booking, Payment]:
    booking = _booking(world, key)
    attempt = online.start_checkout(booking, Provider.STRIPE, choice=choice)
    _pay(fake_stripe, attempt)
    return _fresh(booking), online.sync_payment(Payment.objects.get(pk=attempt.payment_id))


def test_a_partial_card_refund_goes_back_through_stripe_once(world, fake_stripe):
    with tenant_context(world.tenant):
        booking, payment = _paid_by_card(world, fake_stripe)
        [refund] = refunds.request_refund(
            booking, amount=5000, reason="Goodwill", request_key="g1", actor=None
        )
        done = refunds.send_refund(refund.pk)
        assert (done.status, done.provider_reference[:3]) == ("succeeded", "re_")
        again = refunds.send_refund(refund.pk)  # a retried task
        assert again.provider_reference == done.provider_reference
        assert (_fresh(booking).paid, _events(booking, "payment.refunded")) == (TOTAL - 5000, 1)
        # Sending the same refund again at Stripe (same idempotency key) makes no second refund there.
        from payments.gateways import tenant_accounts

        gateway = tenant_accounts.gateway_for(Provider.STRIPE)
        repeat = gateway.refund(
            payment_reference=payment.provider_reference,
            capture_reference=payment.capture_reference,
            amount=5000,
            currency="EUR",
            idempotency_key=refund.idempotency_key,
            reason=refund.reason,
            client_reference=str(refund.pk),
        )
        assert repeat.reference == done.provider_reference


def test_a_refund_across_a_card_and_a_bank_transfer(world, fake_stripe):
    from payments.services.offline import record_offline_payment

    with tenant_context(world.tenant):
        booking = _booking(world)
        attempt = online.start_checkout(booking, Provider.STRIPE)
        _pay(fake_stripe, attempt)
        online.sync_payment(Payment.objects.get(pk=attempt.payment_id))
        record_offline_payment(
            _fresh(booking), amount=TOTAL - DEPOSIT, method="bank_transfer", reference="T-1", actor=None
        )
        parts = refunds.request_refund(
            _fresh(booking), amount=TOTAL - 1000, reason="Split", request_key="s", actor=None
        )
        by_provider = {part.payment.provider: part for part in parts}
        assert (by_provider[Provider.STRIPE].amount, by_provider[Provider.OFFLINE].amount) == (
            DEPOSIT,
            TOTAL - DEPOSIT - 1000,
        )
        assert refunds.send_refund(by_provider[Provider.STRIPE].pk).status == "succeeded"
        assert refunds.send_refund(by_provider[Provider.OFFLINE].pk).status == "pending"  # staff send it back
        with pytest.raises(DomainError):
            refunds.request_refund(_fresh(booking), amount=1001, reason="More", request_key="m", actor=None)


def test_cancelling_a_card_paid_booking_refunds_it_and_the_booking_ends_refunded(world, fake_stripe):
    with tenant_context(world.tenant):
        booking, _payment = _paid_by_card(world, fake_stripe)
        booking = services.confirm_booking(booking)
        services.cancel_booking(booking, reason="Illness")
        [refund] = Refund.objects.filter(booking=booking)
        refunds.send_refund(refund.pk)
        assert (_fresh(booking).status, _fresh(booking).paid) == ("refunded", 0)


def test_money_for_a_booking_that_expired_meanwhile_is_given_back(world, fake_stripe):
    with tenant_context(world.tenant):
        booking = _booking(world)
        attempt = online.start_checkout(booking, Provider.STRIPE)
        services.expire_booking(_fresh(booking))
        _pay(fake_stripe, attempt)
        online.sync_payment(Payment.objects.get(pk=attempt.payment_id))
        [refund] = Refund.objects.filter(booking=booking)
        assert (refund.kind, refund.amount) == ("surplus", DEPOSIT)
        refunds.send_refund(refund.pk)
        assert _fresh(booking).paid == 0


def test_paying_twice_in_two_tabs_refunds_the_surplus(world, fake_stripe):
    with tenant_context(world.tenant):
        booking = _booking(world)
        first = online.start_checkout(booking, Provider.STRIPE, choice="balance")
        client_secret = first.client_secret
        _pay(fake_stripe, first)
        online.sync_payment(Payment.objects.get(pk=first.payment_id))
        # The second tab confirms the intent it loaded before (a second, separate intent for the same amount).
        Payment.objects.filter(pk=first.payment_id)  # noqa: B018 - kept for clarity
        second_payment = Payment.objects.create(
            booking=booking,
            provider=Provider.STRIPE,
            method="card",
            amount=TOTAL,
            currency="EUR",
            idempotency_key="checkout-tab2",
        )
        from payments.gateways import tenant_accounts

        gateway = tenant_accounts.gateway_for(Provider.STRIPE)
        state = gateway.create_payment(
            amount=TOTAL, currency="EUR", idempotency_key="checkout-tab2", description="tab 2", metadata={}
        )
        online.apply_gateway_state(second_payment.pk, state)
        fake_stripe.pay(state.client_secret, VISA)
        online.sync_payment(Payment.objects.get(pk=second_payment.pk))
        assert client_secret != state.client_secret
        [surplus] = Refund.objects.filter(booking=booking, kind="surplus")
        assert surplus.amount == TOTAL
        refunds.send_refund(surplus.pk)
        assert _fresh(booking).paid == TOTAL


# --- installments --------------------------------------------------------------------------------------------------


def test_the_balance_is_charged_on_the_saved_card_when_it_falls_due(world, fake_stripe):
    with tenant_context(world.tenant):
        booking = confirmed_with_saved_card(world, fake_stripe)
        balance = Installment.objects.get(schedule__booking=booking, sequence=2)
        assert installments.charge_due_installments(today=balance.due_on - dt.timedelta(days=1)) == 0
        assert installments.charge_due_installments(today=balance.due_on) == 1
        payment = Payment.objects.get(booking=booking, off_session=True)
        assert (payment.status, payment.amount, payment.installment_id) == (
            "succeeded",
            TOTAL - DEPOSIT,
            balance.pk,
        )
        assert _fresh(booking).balance == 0
        assert installments.charge_due_installments(today=balance.due_on) == 0  # paid up: not even looked at
        assert Payment.objects.filter(booking=booking, off_session=True).count() == 1


def test_a_failing_installment_is_retried_dunned_and_then_flagged(world, fake_stripe):
    with tenant_context(world.tenant):
        booking = confirmed_with_saved_card(world, fake_stripe, DECLINED_OFF_SESSION)
        balance = Installment.objects.get(schedule__booking=booking, sequence=2)
        day = balance.due_on
        installments.charge_due_installments(today=day)
        balance.refresh_from_db()
        assert (balance.attempts, balance.dunning, balance.next_attempt_on) == (
            1,
            "failed",
            day + dt.timedelta(days=1),
        )
        assert installments.charge_due_installments(today=day) == 0  # not before its retry day
        installments.charge_due_installments(today=day + dt.timedelta(days=1))
        balance.refresh_from_db()
        assert (balance.attempts, balance.dunning) == (2, "final_notice")
        installments.charge_due_installments(today=balance.next_attempt_on)
        balance.refresh_from_db()
        assert (balance.attempts, balance.dunning) == (3, "gave_up")
        assert PaymentSchedule.objects.get(booking=booking).needs_attention
        assert _events(booking, "payment.installment_failed") == 2
        assert _events(booking, "payment.installment_unpaid") == 1
        assert Payment.objects.filter(booking=booking, off_session=True, status="failed").count() == 3
        assert _fresh(booking).status == "confirmed"


def test_after_the_final_failure_the_terms_may_cancel_the_booking(world, fake_stripe):
    with tenant_context(world.tenant):
        PaymentTerms.objects.update(after_final_failure="cancel", retry_days=[])
        booking = confirmed_with_saved_card(world, fake_stripe, DECLINED_OFF_SESSION)
        balance = Installment.objects.get(schedule__booking=booking, sequence=2)
        installments.charge_due_installments(today=balance.due_on)
        assert _fresh(booking).status == "cancelled"


def test_installments_falling_due_together_make_one_charge_and_one_email(world, fake_stripe):
    with tenant_context(world.tenant):
        PaymentTerms.objects.update(kind="installments", installment_count=3)
        booking = confirmed_with_saved_card(world, fake_stripe, DECLINED_OFF_SESSION)
        first, second, third = Installment.objects.filter(schedule__booking=booking).order_by("sequence")
        assert _fresh(booking).paid == first.amount
        day = third.due_on  # the beat did not run on the second's day: both are due now

        assert installments.charge_due_installments(today=day) == 2
        [attempt] = Payment.objects.filter(booking=booking, off_session=True)
        assert (attempt.status, attempt.amount, attempt.installment_id) == (
            "failed",
            second.amount + third.amount,
            second.pk,
        )
        second.refresh_from_db()
        third.refresh_from_db()
        assert (second.attempts, second.dunning, third.attempts, third.dunning) == (1, "failed", 0, "")
        assert _events(booking, "payment.installment_failed") == 1
        installments.charge_due_installments(today=day)  # both wait for the second's retry day
        assert Payment.objects.filter(booking=booking, off_session=True).count() == 1

        schedule = PaymentSchedule.objects.get(booking=booking)
        schedule.payment_method_reference = fake_stripe.attach_card(VISA, schedule.customer_reference)
        schedule.save(update_fields=["payment_method_reference"])
        installments.charge_due_installments(today=second.next_attempt_on)
        charged = Payment.objects.get(booking=booking, off_session=True, status="succeeded")
        assert charged.amount == second.amount + third.amount
        assert (_fresh(booking).balance, _events(booking, "payment.installment_failed")) == (0, 1)


def _first_installment_attempt(booking: Booking, installment: Installment, key: str, **fields) -> Payment:
    """An off-session attempt a beat run recorded for ``installment`` (its first), as ``fields`` left it."""
    Installment.objects.filter(pk=installment.pk).update(attempts=1)
    return Payment.objects.create(
        booking=booking,
        provider=Provider.STRIPE,
        method="card",
        amount=TOTAL - DEPOSIT,
        currency="EUR",
        installment=installment,
        off_session=True,
        idempotency_key=key,
        **fields,
    )


def test_a_failure_learnt_elsewhere_is_dunned_by_the_next_run_not_charged_again(world, fake_stripe):
    with tenant_context(world.tenant):
        booking = confirmed_with_saved_card(world, fake_stripe, DECLINED_OFF_SESSION)
        balance = Installment.objects.get(schedule__booking=booking, sequence=2)
        # A run's attempt failed and was recorded (by it, reconciliation or a webhook); its dunning step was not
        # taken yet (the run is between the two, or died).
        _first_installment_attempt(
            booking, balance, "installment-race", status="failed", failure_code="card_declined"
        )

        installments.charge_due_installments(today=balance.due_on)
        balance.refresh_from_db()
        assert Payment.objects.filter(booking=booking, off_session=True).count() == 1  # not charged again
        assert (balance.attempts, balance.attempts_dunned, balance.dunning) == (1, 1, "failed")
        assert balance.next_attempt_on == balance.due_on + dt.timedelta(days=1)
        assert _events(booking, "payment.installment_failed") == 1


def test_a_charge_whose_outcome_is_unknown_pauses_charging_and_is_not_dunned(world, fake_stripe):
    with tenant_context(world.tenant):
        booking = confirmed_with_saved_card(world, fake_stripe)
        balance = Installment.objects.get(schedule__booking=booking, sequence=2)
        # Recorded, never answered, and older than Stripe keeps its key: Stripe may have charged it.
        lost = _first_installment_attempt(booking, balance, "installment-lost")
        Payment.objects.filter(pk=lost.pk).update(
            created_at=timezone.now() - dt.timedelta(hours=25),
            updated_at=timezone.now() - dt.timedelta(hours=25),
        )
        reconciliation.reconcile_unsettled()
        lost.refresh_from_db()
        assert (lost.status, lost.failure_code) == ("failed", "unknown_outcome")
        assert PaymentSchedule.objects.get(booking=booking).needs_attention

        installments.charge_due_installments(today=balance.due_on)
        installments.charge_due_installments(today=balance.due_on + dt.timedelta(days=2))
        assert Payment.objects.filter(booking=booking, off_session=True).count() == 1  # never charged again
        assert _events(booking, "payment.installment_failed") == 0  # and the payer is not told it failed

        # Staff may resume only once they have checked at Stripe that it did not go through.
        with pytest.raises(DomainError) as refused:
            installments.resume_automatic_charges(booking, note="Looked at it", actor=None)
        assert refused.value.code == "unknown_outcome"
        assert PaymentSchedule.objects.get(booking=booking).needs_attention
        installments.resume_automatic_charges(
            booking, note="Not charged at Stripe", actor=None, checked_not_charged=True
        )
        installments.charge_due_installments(today=balance.due_on + dt.timedelta(days=2))
        assert Payment.objects.filter(booking=booking, off_session=True, status="succeeded").count() == 1
        assert _fresh(booking).balance == 0


def test_charges_are_not_resumed_while_one_waits_for_its_answer(world, fake_stripe):
    from core.errors import ConflictError

    with tenant_context(world.tenant):
        booking = confirmed_with_saved_card(world, fake_stripe)
        balance = Installment.objects.get(schedule__booking=booking, sequence=2)
        _first_installment_attempt(booking, balance, "installment-in-flight")
        PaymentSchedule.objects.filter(booking=booking).update(needs_attention=True)
        with pytest.raises(ConflictError) as refused:
            installments.resume_automatic_charges(booking, note="Card updated", actor=None)
        assert refused.value.code == "charge_in_flight"
        assert PaymentSchedule.objects.get(booking=booking).needs_attention

        PaymentSchedule.objects.filter(booking=booking).update(needs_attention=False)
        with pytest.raises(ConflictError) as refused:  # nothing is paused: nothing to resume
            installments.resume_automatic_charges(booking, note="Card updated", actor=None)
        assert refused.value.code == "not_paused"


def test_a_webhook_our_credentials_fail_on_waits_for_the_account_to_be_fixed(world, fake_stripe):
    from payments.gateways.base import GatewayCredentialsRefused
    from payments.models import GatewayAccount

    with tenant_context(world.tenant):
        booking = _booking(world)
        attempt = online.start_checkout(booking, Provider.STRIPE)
        _pay(fake_stripe, attempt)
        reference = Payment.objects.get(pk=attempt.payment_id).provider_reference
        body, headers = stripe_webhook(
            "payment_intent.succeeded", {"id": reference, "object": "payment_intent"}, event_id="evt_keys"
        )
        webhooks.receive(Provider.STRIPE, body, headers)
        account = GatewayAccount.objects.get(provider=Provider.STRIPE)
        right_key, account.secret_key = account.secret_key, "sk_"  # revoked meanwhile
        account.save()
        event = WebhookEvent.objects.get(event_id="evt_keys")
        with pytest.raises(GatewayCredentialsRefused):
            webhooks.process(event.pk)
        assert WebhookEvent.objects.get(pk=event.pk).processed_at is None  # not given up: left for the sweep

        account.secret_key = right_key  # staff fix the account
        account.save()
        WebhookEvent.objects.filter(pk=event.pk).update(received_at=timezone.now() - dt.timedelta(minutes=11))
        reconciliation.reconcile_unsettled()
        assert WebhookEvent.objects.get(pk=event.pk).outcome == "payment succeeded"


def test_a_request_stripe_refuses_pauses_charging_instead_of_retrying_every_hour(world, fake_stripe):
    with tenant_context(world.tenant):
        booking = confirmed_with_saved_card(world, fake_stripe)
        PaymentSchedule.objects.filter(booking=booking).update(payment_method_reference="pm_gone")
        balance = Installment.objects.get(schedule__booking=booking, sequence=2)
        installments.charge_due_installments(today=balance.due_on)
        [refused] = Payment.objects.filter(booking=booking, off_session=True)
        assert (refused.status, refused.failure_code) == ("failed", "request_refused")
        assert PaymentSchedule.objects.get(booking=booking).needs_attention
        for later in (0, 1, 2):
            installments.charge_due_installments(today=balance.due_on + dt.timedelta(days=later))
        assert Payment.objects.filter(booking=booking, off_session=True).count() == 1
        assert _events(booking, "payment.installment_failed") == 0


def test_a_webhook_event_nobody_processed_is_processed_by_reconciliation(world, fake_stripe):
    with tenant_context(world.tenant):
        booking = _booking(world)
        attempt = online.start_checkout(booking, Provider.STRIPE)
        _pay(fake_stripe, attempt)
        reference = Payment.objects.get(pk=attempt.payment_id).provider_reference
        body, headers = stripe_webhook(
            "payment_intent.succeeded", {"id": reference, "object": "payment_intent"}, event_id="evt_lost"
        )
        webhooks.receive(Provider.STRIPE, body, headers)  # its task was lost (the broker restarted)
        WebhookEvent.objects.filter(event_id="evt_lost").update(
            received_at=timezone.now() - dt.timedelta(minutes=11)
        )
        Payment.objects.filter(pk=attempt.payment_id).update(updated_at=timezone.now())  # not yet "unsettled"
        reconciliation.reconcile_unsettled()
        assert WebhookEvent.objects.get(event_id="evt_lost").outcome == "payment succeeded"
        assert _fresh(booking).paid == DEPOSIT


def test_a_replanned_installment_starts_its_dunning_afresh(world, fake_stripe):
    from payments.services import schedules

    with tenant_context(world.tenant):
        booking = confirmed_with_saved_card(world, fake_stripe, DECLINED_OFF_SESSION)
        balance = Installment.objects.get(schedule__booking=booking, sequence=2)
        installments.charge_due_installments(today=balance.due_on)
        balance.refresh_from_db()
        assert (balance.attempts, balance.attempts_dunned) == (1, 1)
        Booking.objects.filter(pk=booking.pk).update(total=TOTAL + 5000)  # e.g. a traveller added
        schedules.replan(_fresh(booking))
        balance.refresh_from_db()
        assert (balance.attempts, balance.attempts_dunned, balance.dunning, balance.next_attempt_on) == (
            0,
            0,
            "",
            None,
        )
        installments.charge_due_installments(today=balance.due_on)
        balance.refresh_from_db()
        assert (balance.attempts, balance.attempts_dunned, balance.dunning) == (1, 1, "failed")
        keys = set(Payment.objects.filter(installment=balance).values_list("idempotency_key", flat=True))
        assert len(keys) == 2  # a new attempt for the new amount: never the first attempt's key again


def test_paying_early_from_the_page_settles_the_installment_before_the_beat(world, fake_stripe):
    with tenant_context(world.tenant):
        booking = confirmed_with_saved_card(world, fake_stripe)
        attempt = online.start_checkout(
            booking, Provider.STRIPE
        )  # nothing due now: the next installment, early
        assert attempt.amount == TOTAL - DEPOSIT
        _pay(fake_stripe, attempt)
        online.sync_payment(Payment.objects.get(pk=attempt.payment_id))
        balance = Installment.objects.get(schedule__booking=booking, sequence=2)
        installments.charge_due_installments(today=balance.due_on)
        assert not Payment.objects.filter(booking=booking, off_session=True).exists()


# --- currencies ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("currency", ["JPY", "KRW", "KWD", "BHD", "JOD"])
def test_zero_and_three_decimal_currencies_are_charged_exactly(world, fake_stripe, currency):
    with tenant_context(world.tenant):
        booking = _booking(world)
        Booking.objects.filter(pk=booking.pk).update(currency=currency, total=30000)
        booking = _fresh(booking)
        attempt = online.start_checkout(booking, Provider.STRIPE, choice="balance")
        assert (attempt.amount, attempt.currency) == (30000, currency)
        _pay(fake_stripe, attempt)
        payment = online.sync_payment(Payment.objects.get(pk=attempt.payment_id))
        assert (payment.status, payment.amount, payment.currency) == ("succeeded", 30000, currency)


def test_paypal_is_not_offered_for_a_currency_it_does_not_take(world):
    with tenant_context(world.tenant):
        booking = _booking(world)
        Booking.objects.filter(pk=booking.pk).update(currency="KWD")
        with pytest.raises(DomainError) as refused:
            online.start_checkout(
                _fresh(booking),
                Provider.PAYPAL,
                return_url="https://t.example/",
                cancel_url="https://t.example/",
            )
        assert refused.value.code == "currency_unsupported"
        assert not Payment.objects.filter(booking=booking).exists()


# --- what the reviews found ---------------------------------------------------------------------------------------


def test_an_installment_charged_before_a_crash_is_never_charged_again(world, fake_stripe):
    from payments.gateways import tenant_accounts

    with tenant_context(world.tenant):
        booking = confirmed_with_saved_card(world, fake_stripe)
        balance = Installment.objects.get(schedule__booking=booking, sequence=2)
        schedule = PaymentSchedule.objects.get(booking=booking)
        # The run recorded its attempt, Stripe charged the card, and the worker died before recording the answer.
        attempt = _first_installment_attempt(booking, balance, f"installment-{balance.pk}-1")
        tenant_accounts.gateway_for(Provider.STRIPE).charge_saved_method(
            amount=attempt.amount,
            currency="EUR",
            customer=schedule.customer_reference,
            payment_method=schedule.payment_method_reference,
            idempotency_key=attempt.idempotency_key,
            description=f"Booking {booking.reference}: installment 2",
            metadata={
                "tenant": str(booking.tenant_id),
                "booking": booking.reference,
                "payment": str(attempt.pk),
            },
        )
        # The redelivered task (or the next run) sends the same attempt again: Stripe replays its answer.
        installments.charge_due_installments(today=balance.due_on)
        assert Payment.objects.filter(booking=booking, off_session=True).count() == 1
        attempt.refresh_from_db()
        assert (attempt.status, attempt.provider_reference[:3]) == ("succeeded", "pi_")
        assert _fresh(booking).paid == TOTAL


def test_an_outage_leaves_the_installment_attempt_to_be_sent_again(world, fake_stripe):
    with tenant_context(world.tenant):
        booking = confirmed_with_saved_card(world, fake_stripe)
        balance = Installment.objects.get(schedule__booking=booking, sequence=2)
        fake_stripe.outage("down")
        try:
            installments.charge_due_installments(today=balance.due_on)
        finally:
            fake_stripe.outage("up")
        attempt = Payment.objects.get(booking=booking, off_session=True)
        assert attempt.status == "created"
        installments.charge_due_installments(today=balance.due_on)
        attempt.refresh_from_db()
        balance.refresh_from_db()
        assert (attempt.status, balance.attempts, balance.dunning) == ("succeeded", 1, "")
        assert Payment.objects.filter(booking=booking, off_session=True).count() == 1


def test_a_goodwill_refund_is_not_asked_for_again(world, fake_stripe):
    with tenant_context(world.tenant):
        booking, _payment = _paid_by_card(world, fake_stripe)
        booking = services.confirm_booking(booking)
        [refund] = refunds.request_refund(
            booking, amount=500, reason="Late pickup", request_key="gw", actor=None
        )
        refunds.send_refund(refund.pk)
        fresh = _fresh(booking)
        assert (fresh.paid, online.checkout_amount(fresh, "balance")) == (TOTAL - 500, 0)
        balance = Installment.objects.get(schedule__booking=booking, sequence=2)
        assert installments.charge_due_installments(today=balance.due_on) == 1
        assert not Payment.objects.filter(booking=booking, off_session=True).exists()


def test_cancelling_with_a_refund_under_way_gives_back_only_the_policys_amount(world, fake_stripe):
    from payments.services.offline import record_offline_payment

    with tenant_context(world.tenant):
        booking = _booking(world)
        record_offline_payment(booking, amount=TOTAL, method="cash", reference="", actor=None)
        booking = services.confirm_booking(_fresh(booking))
        refunds.request_refund(booking, amount=3000, reason="Goodwill", request_key="gw", actor=None)
        soon = timezone.now() + dt.timedelta(days=5)  # the 50 % tier: half the price is charged
        world.departure.__class__.objects.filter(pk=world.departure.pk).update(starts_at=soon, ends_at=soon)
        services.cancel_booking(_fresh(booking), reason="Changed plans")
        # The pending 3000 is part of the half that goes back, not on top of it.
        assert sum(Refund.objects.filter(booking=booking).values_list("amount", flat=True)) == TOTAL // 2


def test_an_agency_booking_is_not_paid_by_the_traveller(world):
    with tenant_context(world.tenant):
        Booking.objects.filter(pk=(booking := _booking(world)).pk).update(
            agency=world.agency, on_account=False
        )
        assert online.checkout_amount(_fresh(booking), "balance") == 0


def test_checkout_pages_are_throttled_per_address(world, client):
    from bookings.links import manage_token
    from portals.retail import throttle
    from tests.factories import host_of

    with tenant_context(world.tenant):
        booking = _booking(world)
        url = f"/booking/{manage_token(booking)}/pay/"
    host = host_of(world.tenant)
    limit = throttle.PAYMENT_PAGE_LIMIT
    throttle.PAYMENT_PAGE_LIMIT = 2
    try:
        assert [client.get(url, HTTP_HOST=host).status_code for _ in range(3)] == [200, 200, 429]
        other = client.get(url, HTTP_HOST=host, REMOTE_ADDR="203.0.113.9")
        assert other.status_code == 200
    finally:
        throttle.PAYMENT_PAGE_LIMIT = limit
    with tenant_context(world.tenant):
        assert Payment.objects.filter(booking=booking).count() == 1  # the same attempt offered each time


def test_the_checkout_page_loads_stripe_js_under_its_csp_and_the_status_is_cheap_and_private(
    world, client, fake_stripe
):
    from bookings.links import manage_token
    from tests.factories import host_of

    with tenant_context(world.tenant):
        booking = _booking(world)
        token = manage_token(booking)
    host = host_of(world.tenant)
    page = client.get(f"/booking/{token}/pay/", HTTP_HOST=host)
    assert page.status_code == 200
    html = page.content.decode()
    assert fake_stripe.js_url in html and 'data-client-secret="pi_' in html and "€60.00" in html
    policy = page["Content-Security-Policy"]
    assert fake_stripe.base_url in policy and "'unsafe-inline'" not in policy
    assert page["Cache-Control"] == "private, no-store"
    assert client.head(f"/booking/{token}/pay/", HTTP_HOST=host).status_code == 405

    status = client.get(f"/booking/{token}/status/?payment=not-a-uuid", HTTP_HOST=host)
    assert (status.status_code, status.json()["payment"], status.json()["due_now"]) == (200, None, DEPOSIT)
    with tenant_context(world.tenant):
        Booking.objects.filter(pk=booking.pk).update(agency=world.agency, channel="trade")
    trade = client.get(f"/booking/{token}/status/", HTTP_HOST=host).json()
    assert "balance" not in trade and "paid" not in trade  # the agency's net price is not the traveller's
    assert client.get(f"/booking/{token}/pay/", HTTP_HOST=host).status_code == 302


def test_the_invoice_of_a_deposit_booking_shows_what_was_paid_and_the_balance_due(world, fake_stripe):
    from bookings.services import documents, invoicing

    with tenant_context(world.tenant):
        booking = confirmed_with_saved_card(world, fake_stripe)
        invoice = invoicing.issue_invoice(booking)
        html = documents.invoice_html(invoice)
        balance = Installment.objects.get(schedule__booking=booking, sequence=2)
        assert "€60.00" in html and "€140.00" in html and "Balance due" in html
        assert balance.due_on.strftime("%Y") in html


def test_money_arriving_after_the_tour_took_place_counts_towards_what_was_owed(world, fake_stripe):
    with tenant_context(world.tenant):
        booking = confirmed_with_saved_card(world, fake_stripe)
        attempt = online.start_checkout(booking, Provider.STRIPE)  # the balance, paid early...
        Booking.objects.filter(pk=booking.pk).update(status="completed")  # ...and the tour ran meanwhile
        _pay(fake_stripe, attempt)
        online.sync_payment(Payment.objects.get(pk=attempt.payment_id))
        assert not Refund.objects.filter(booking=booking).exists()
        assert _fresh(booking).paid == TOTAL
