"""Payment emails: a failed installment (with the reason in plain words, the next attempt and the link to pay), the
final notice (what happens after the last attempt, per the booking's terms), the refund (how much, to what, why);
queued once per event, in the booking's language, only while they still make sense."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from bookings import services
from bookings.handlers import emails as booking_consumers
from bookings.links import manage_token
from bookings.models import Booking, Notification
from bookings.services import notifications
from events.models import OutboxEvent
from events.outbox import publish
from events.registry import consumers_of
from payments import handlers as consumers
from payments.gateways.base import REFUND_SUCCEEDED, SUCCEEDED, GatewayPayment, GatewayRefund
from payments.models import Installment, Payment, PaymentTerms
from payments.services import installments, online, refunds
from payments.services.offline import record_offline_payment
from tenants.context import tenant_context
from tests.bookings.world import LEAD, World
from tests.payments.helpers import TOTAL, clerk

Kind = Notification.Kind
DEPOSIT = TOTAL // 4  # 50.00 EUR now, the 150.00 EUR balance later
BALANCE = TOTAL - DEPOSIT


@pytest.fixture
def world(db):
    return World()


def _terms(world: World, after_final_failure: str = "flag") -> PaymentTerms:
    with tenant_context(world.tenant):
        return PaymentTerms.objects.create(
            name="Deposit",
            kind="deposit",
            deposit_percent=Decimal(25),
            balance_days_before=0,
            after_final_failure=after_final_failure,
            is_default=True,
        )


def _confirmed_with_balance_due(world: World, key: str, language: str = "en") -> Booking:
    """A retail booking whose deposit is paid (confirmed) and whose balance installment falls due today."""
    booking = services.create_booking(holds=[world.hold(key)], lead=LEAD, channel="retail", language=language)
    record_offline_payment(
        booking, amount=DEPOSIT, method="cash", reference=f"{key}-deposit", actor=clerk(world)
    )
    booking = services.confirm_booking(Booking.objects.get(pk=booking.pk))
    Installment.objects.filter(schedule__booking=booking, sequence=2).update(due_on=timezone.localdate())
    return booking


def _installment_failed(booking: Booking, **payload) -> OutboxEvent:
    installment = Installment.objects.get(schedule__booking=booking, sequence=2)
    values = {
        "reference": booking.reference,
        "installment": str(installment.pk),
        "sequence": 2,
        "amount": BALANCE,
        "currency": "EUR",
        "reason": "card_declined",
        "attempt": 1,
        "next_attempt_on": "2026-12-03",
        "final_notice": False,
    }
    values.update(payload)
    with transaction.atomic():
        return publish("payment.installment_failed", booking, values)


def _send_all(booking: Booking) -> list[Notification]:
    sent = []
    for notification in Notification.objects.filter(booking=booking).order_by("created_at"):
        assert notifications.send(notification).outcome == "sent", notification.kind
        notification.refresh_from_db()
        sent.append(notification)
    return sent


def _html(message) -> str:
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return html


def _checkout_path(booking: Booking) -> str:
    return f"/booking/{manage_token(booking)}/pay/"


# --- failed installments ---------------------------------------------------------------------------------------


def test_a_declined_installment_says_why_when_we_try_again_and_links_to_the_checkout(world):
    _terms(world)
    with tenant_context(world.tenant):
        booking = _confirmed_with_balance_due(world, "declined")
        event = _installment_failed(booking)
        consumers.email_installment_failed(event)
        [notification] = Notification.objects.filter(booking=booking)
        assert (notification.kind, notification.key, notification.recipient) == (
            "payment_failed",
            str(event.pk),
            LEAD.email,
        )
        _send_all(booking)

    [message] = mail.outbox
    assert message.subject == f"We could not take your payment for booking {booking.reference}"
    assert "We could not take your installment of €150.00. Your bank declined the card." in message.body
    assert (
        "We will try again on December 3, 2026. You can also pay now from your booking page." in message.body
    )
    assert f"Pay now: {notifications.checkout_url(booking)}" in message.body
    assert _checkout_path(booking) in message.body and message.body.count("/pay/") == 1
    assert f'href="{notifications.checkout_url(booking)}"' in _html(message)
    assert "Your bank declined the card." in _html(message)


def test_the_failure_email_is_in_the_bookings_language(world):
    _terms(world)
    with tenant_context(world.tenant):
        booking = _confirmed_with_balance_due(world, "french", language="fr")
        consumers.email_installment_failed(_installment_failed(booking, reason="insufficient_funds"))
        [notification] = _send_all(booking)
        assert notification.language == "fr"

    [message] = mail.outbox
    assert (
        message.subject
        == f"Nous n'avons pas pu encaisser votre paiement pour la réservation {booking.reference}"
    )
    assert "Nous n'avons pas pu encaisser votre échéance de 150,00\xa0€." in message.body
    assert "La carte ne disposait pas de fonds suffisants." in message.body
    assert "Nous réessaierons le 3 décembre 2026." in message.body
    assert '<html lang="fr">' in _html(message) and _checkout_path(booking) in _html(message)


def test_without_a_saved_card_the_traveller_is_asked_to_pay_from_the_booking_page(world):
    _terms(world)
    with tenant_context(world.tenant):
        booking = _confirmed_with_balance_due(world, "nocard")
        installment = Installment.objects.get(schedule__booking=booking, sequence=2)
        today = timezone.localdate()
        # The real dunning run: no card saved on the schedule, so it asks the payer.
        assert installments.charge_installment(installment.pk, today) is None
        event = OutboxEvent.objects.get(aggregate_id=str(booking.pk), name="payment.installment_failed")
        assert event.payload["reason"] == "no_saved_card"
        consumers.email_installment_failed(event)
        _send_all(booking)

    [message] = mail.outbox
    assert message.subject == f"Payment due for booking {booking.reference}"
    assert "Your installment of €150.00 is due." in message.body
    retry_day = today + dt.timedelta(days=1)
    assert (
        f"if it is still unpaid on {retry_day:%B} {retry_day.day}, {retry_day.year}, we will remind you"
        in (message.body)
    )
    assert "could not take" not in message.body and _checkout_path(booking) in message.body


def test_when_the_bank_wants_the_payer_to_confirm_the_email_says_so(world):
    _terms(world)
    with tenant_context(world.tenant):
        booking = _confirmed_with_balance_due(world, "sca", language="de")
        consumers.email_installment_failed(_installment_failed(booking, reason="authentication_required"))
        _send_all(booking)

    [message] = mail.outbox
    assert message.subject == f"Bitte bestätigen Sie Ihre Zahlung für die Buchung {booking.reference}"
    assert (
        "Ihre Bank möchte, dass Sie die Zahlung Ihrer Rate von 150,00\xa0€ selbst bestätigen" in message.body
    )
    assert "3. Dezember 2026" in message.body


@pytest.mark.parametrize(
    ("after_final_failure", "consequence"),
    [
        (
            "cancel",
            "If it is still unpaid after that, your booking will be cancelled under its cancellation terms.",
        ),
        ("flag", "If it is still unpaid after that, our team will contact you."),
    ],
)
def test_the_final_notice_names_the_last_attempt_and_what_follows_it(world, after_final_failure, consequence):
    _terms(world, after_final_failure)
    with tenant_context(world.tenant):
        booking = _confirmed_with_balance_due(world, "final")
        event = _installment_failed(booking, attempt=3, next_attempt_on="2026-12-10", final_notice=True)
        consumers.email_installment_failed(event)
        [notification] = _send_all(booking)
        assert notification.kind == "final_notice"

    [message] = mail.outbox
    assert message.subject == f"Final notice: payment for booking {booking.reference}"
    assert "We could not take your installment of €150.00. Your bank declined the card." in message.body
    assert "We will try to take it one last time on December 10, 2026." in message.body
    assert consequence in message.body and consequence in _html(message)
    assert _checkout_path(booking) in message.body


def test_the_final_notice_in_spanish(world):
    _terms(world, "cancel")
    with tenant_context(world.tenant):
        booking = _confirmed_with_balance_due(world, "final-es", language="es")
        consumers.email_installment_failed(
            _installment_failed(
                booking, reason="expired_card", next_attempt_on="2026-12-10", final_notice=True
            )
        )
        _send_all(booking)

    [message] = mail.outbox
    assert message.subject == f"Último aviso: pago de la reserva {booking.reference}"
    assert "La tarjeta ha caducado." in message.body
    assert "10 de diciembre de 2026" in message.body
    assert "su reserva se cancelará según sus condiciones de cancelación" in message.body


def test_the_same_event_twice_queues_and_sends_one_email(world, django_capture_on_commit_callbacks):
    _terms(world)
    with tenant_context(world.tenant):
        booking = _confirmed_with_balance_due(world, "twice")
        event = _installment_failed(booking)
        with django_capture_on_commit_callbacks() as callbacks:
            consumers.email_installment_failed(event)
            consumers.email_installment_failed(event)
        assert len(callbacks) == 1
        [notification] = Notification.objects.filter(booking=booking)
        assert notifications.send(notification).outcome == "sent"
        assert notifications.send(notification).outcome == "sent"  # a redelivered task: already done
        # A later attempt is another event: another email.
        consumers.email_installment_failed(_installment_failed(booking, attempt=2))
        assert Notification.objects.filter(booking=booking, kind="payment_failed").count() == 2
    assert len(mail.outbox) == 1


def test_dunning_emails_stop_once_the_money_is_paid_or_the_booking_cancelled(world):
    _terms(world)
    with tenant_context(world.tenant):
        booking = _confirmed_with_balance_due(world, "paid-meanwhile")
        assert notifications.reason_not_to_send(booking, Kind.PAYMENT_FAILED) == ""
        assert notifications.reason_not_to_send(booking, Kind.FINAL_NOTICE) == ""
        consumers.email_installment_failed(_installment_failed(booking))
        [queued] = Notification.objects.filter(booking=booking)
        # Paid from the booking page before the email went: it is not sent.
        record_offline_payment(
            booking, amount=BALANCE, method="cash", reference="balance", actor=clerk(world)
        )
        booking = Booking.objects.get(pk=booking.pk)
        assert notifications.reason_not_to_send(booking, Kind.PAYMENT_FAILED) == "nothing due"
        assert notifications.send(queued).outcome == "skipped"
        queued.refresh_from_db()
        assert (queued.status, queued.last_error) == ("failed", "skipped: nothing due")
        # An event arriving now queues nothing.
        consumers.email_installment_failed(_installment_failed(booking, attempt=2, final_notice=True))
        assert Notification.objects.filter(booking=booking).count() == 1

        unpaid = _confirmed_with_balance_due(world, "cancelled-meanwhile")
        services.cancel_booking(unpaid, reason="Changed plans")
        unpaid = Booking.objects.get(pk=unpaid.pk)
        assert notifications.reason_not_to_send(unpaid, Kind.FINAL_NOTICE) == "booking cancelled"
        consumers.email_installment_failed(_installment_failed(unpaid, final_notice=True))
        assert not Notification.objects.filter(booking=unpaid, kind__in=["payment_failed", "final_notice"])
    assert mail.outbox == []


def test_a_staff_resend_of_the_final_notice_reports_the_latest_final_attempt(world):
    _terms(world)
    with tenant_context(world.tenant):
        booking = _confirmed_with_balance_due(world, "resend")
        _installment_failed(booking, attempt=2, next_attempt_on="2026-12-05")
        _installment_failed(booking, attempt=3, next_attempt_on="2026-12-10", final_notice=True)
        _installment_failed(booking, attempt=1, next_attempt_on="2026-12-01")  # delivered late: not final
        resent = notifications.resend(booking, Kind.FINAL_NOTICE, actor=clerk(world))
        assert resent.key.startswith("resend-")
        _send_all(booking)

    [message] = mail.outbox
    assert "one last time on December 10, 2026" in message.body


def test_an_agencys_booking_gets_no_dunning_email(world):
    with tenant_context(world.tenant):
        trade = world.confirmed_booking("agency-dunning")
        assert trade.balance > 0
        for kind in (Kind.PAYMENT_FAILED, Kind.FINAL_NOTICE):
            assert notifications.reason_not_to_send(trade, kind) == "the agency pays, not the traveller"
        with transaction.atomic():
            event = publish(
                "payment.installment_failed",
                trade,
                {"reference": trade.reference, "amount": 100, "currency": "EUR", "final_notice": False},
            )
        consumers.email_installment_failed(event)
        assert not Notification.objects.filter(booking=trade)


def test_unpaid_installments_and_failed_checkouts_send_no_email():
    email_consumers = {name for name in consumers.__dict__ if name.startswith("email_")}
    for event_name in ("payment.installment_unpaid", "payment.failed"):
        assert not [name for name in consumers_of(event_name) if name.startswith("bookings.email")], (
            event_name
        )
    assert {"email_installment_failed", "email_refund"} <= email_consumers
    assert consumers_of("payment.installment_failed") == ["bookings.email_installment_failed"]


# --- refunds ---------------------------------------------------------------------------------------------------


def _gateway_payment(booking: Booking, provider: str, amount: int, summary: str = "") -> Payment:
    """A card or PayPal payment the gateway reports succeeded (recorded as its webhook would)."""
    method = Payment.Method.PAYPAL if provider == Payment.Provider.PAYPAL else Payment.Method.CARD
    payment = Payment.objects.create(
        booking=booking, provider=provider, method=method, amount=amount, currency=booking.currency
    )
    state = GatewayPayment(
        reference=f"ref-{payment.pk}",
        status=SUCCEEDED,
        amount=amount,
        currency=booking.currency,
        capture_reference=f"cap-{payment.pk}",
        payment_method_summary=summary,
    )
    return online.apply_gateway_state(payment.pk, state)


def _gateway_refund_done(refund) -> None:
    refunds.record_refund_outcome(
        refund.pk,
        GatewayRefund(
            reference=f"re-{refund.pk}", status=REFUND_SUCCEEDED, amount=refund.amount, currency="EUR"
        ),
    )


def _refund_emails(booking: Booking) -> None:
    for event in OutboxEvent.objects.filter(aggregate_id=str(booking.pk), name="payment.refunded"):
        consumers.email_refund(event)
    _send_all(booking)


def test_a_card_refund_names_the_amount_the_card_and_the_delay(world):
    with tenant_context(world.tenant):
        booking = services.create_booking(
            holds=[world.hold("card")], lead=LEAD, channel="retail", language="en"
        )
        _gateway_payment(booking, Payment.Provider.STRIPE, TOTAL, "Visa •••• 4242")
        booking = Booking.objects.get(pk=booking.pk)
        assert notifications.reason_not_to_send(booking, Kind.REFUND) == "no refund was made"
        [refund] = refunds.request_refund(
            booking, amount=2500, reason="Rain", request_key="goodwill-1", actor=clerk(world)
        )
        _gateway_refund_done(refund)
        _refund_emails(Booking.objects.get(pk=booking.pk))

    [message] = mail.outbox
    assert message.subject == f"Refund for booking {booking.reference}"
    assert "We have refunded €25.00 to your card (Visa •••• 4242)." in message.body
    assert "It may take 5 to 10 days to appear on your statement." in message.body
    assert "This refund is a goodwill gesture from our team." in message.body
    assert "We have refunded €25.00 to your card (Visa •••• 4242)." in _html(message)
    assert message.to == [LEAD.email]


def test_a_paypal_refund_in_german_and_a_bank_transfer_refund_after_a_cancellation(world):
    _terms(world)
    with tenant_context(world.tenant):
        booking = services.create_booking(
            holds=[world.hold("pp")], lead=LEAD, channel="retail", language="de"
        )
        _gateway_payment(booking, Payment.Provider.PAYPAL, TOTAL)
        [refund] = refunds.request_refund(
            Booking.objects.get(pk=booking.pk), amount=TOTAL, reason="Goodwill", request_key="g", actor=None
        )
        _gateway_refund_done(refund)
        _refund_emails(Booking.objects.get(pk=booking.pk))

        transfer = _confirmed_with_balance_due(world, "transfer")  # 50.00 paid in cash…
        record_offline_payment(
            transfer, amount=BALANCE, method="bank_transfer", reference="t", actor=clerk(world)
        )
        services.cancel_booking(Booking.objects.get(pk=transfer.pk), reason="Changed plans")
        for pending in transfer.refunds.filter(status="pending"):
            refunds.complete_offline_refund(pending, reference=f"OUT-{pending.pk}", actor=clerk(world))
        transfer = Booking.objects.get(pk=transfer.pk)
        assert notifications.reason_not_to_send(transfer, Kind.REFUND) == ""  # whatever the booking's state
        _refund_emails(transfer)

    german = mail.outbox[0]
    assert german.subject == f"Erstattung für die Buchung {booking.reference}"
    assert "Wir haben 200,00\xa0€ auf Ihr PayPal-Konto erstattet." in german.body
    by_transfer = [message.body for message in mail.outbox[1:] if "to your bank account" in message.body]
    assert by_transfer, [message.body for message in mail.outbox[1:]]
    assert "This is the refund due under your booking's cancellation terms." in by_transfer[0]


def test_a_surplus_refund_says_the_money_was_paid_twice_or_for_a_lapsed_booking(world):
    with tenant_context(world.tenant):
        twice = services.create_booking(
            holds=[world.hold("twice")], lead=LEAD, channel="retail", language="en"
        )
        _gateway_payment(twice, Payment.Provider.STRIPE, TOTAL, "Visa •••• 4242")
        _gateway_payment(twice, Payment.Provider.PAYPAL, TOTAL)  # paid a second time: given back at once
        [surplus] = Booking.objects.get(pk=twice.pk).refunds.all()
        assert surplus.kind == "surplus"
        _gateway_refund_done(surplus)
        _refund_emails(Booking.objects.get(pk=twice.pk))

        lapsed = services.create_booking(
            holds=[world.hold("lapsed")], lead=LEAD, channel="retail", language="en"
        )
        services.expire_booking(lapsed)
        _gateway_payment(lapsed, Payment.Provider.STRIPE, TOTAL, "Mastercard •••• 4444")  # too late
        [late] = Booking.objects.get(pk=lapsed.pk).refunds.all()
        _gateway_refund_done(late)
        _refund_emails(Booking.objects.get(pk=lapsed.pk))

    paid_twice, too_late = (message.body for message in mail.outbox)
    assert "We have refunded €200.00 to your PayPal account." in paid_twice
    assert "money paid on top of your booking's total (for example a payment made twice)" in paid_twice
    assert "We have refunded €200.00 to your card (Mastercard •••• 4444)." in too_late
    assert "a payment that arrived after your booking had lapsed" in too_late


def test_an_agencys_refund_is_emailed_to_the_agency_with_its_amount(world):
    with tenant_context(world.tenant):
        trade = world.confirmed_booking("agency-refund")
        record_offline_payment(
            trade, amount=5000, method="bank_transfer", reference="agency", actor=clerk(world)
        )
        [refund] = refunds.request_refund(
            Booking.objects.get(pk=trade.pk),
            amount=5000,
            reason="Overpaid",
            request_key="a",
            actor=clerk(world),
        )
        refunds.complete_offline_refund(refund, reference="OUT-1", actor=clerk(world))
        trade = Booking.objects.get(pk=trade.pk)
        assert notifications.reason_not_to_send(trade, Kind.REFUND) == ""
        _refund_emails(trade)
        [notification] = Notification.objects.filter(booking=trade)
        assert notification.recipient == world.agency.email

    [message] = mail.outbox
    assert message.to == [world.agency.email]
    assert f"Dear {world.agency}," in message.body
    assert "We have refunded €50.00 to your bank account." in message.body


def test_an_agencys_refund_read_by_the_traveller_hides_the_net_amount(world):
    with tenant_context(world.tenant):
        type(world.agency).objects.filter(pk=world.agency.pk).update(email="")
        trade = world.confirmed_booking("no-agency-address")
        record_offline_payment(trade, amount=5000, method="bank_transfer", reference="n", actor=clerk(world))
        [refund] = refunds.request_refund(
            Booking.objects.get(pk=trade.pk),
            amount=5000,
            reason="Overpaid",
            request_key="n",
            actor=clerk(world),
        )
        refunds.complete_offline_refund(refund, reference="OUT-2", actor=clerk(world))
        _refund_emails(Booking.objects.get(pk=trade.pk))

    [message] = mail.outbox
    assert message.to == [LEAD.email]
    assert "We have made a refund to your bank account." in message.body
    assert "€" not in message.body and "€" not in _html(message)


# --- the payment-due email -------------------------------------------------------------------------------------


def test_the_payment_due_email_links_to_the_checkout_page(world):
    with tenant_context(world.tenant):
        unpaid = services.create_booking(
            holds=[world.hold("due")], lead=LEAD, channel="retail", language="en"
        )
        with transaction.atomic():
            event = publish("booking.awaiting_payment", unpaid, {})
        booking_consumers.email_payment_due(event)
        _send_all(unpaid)

    [message] = mail.outbox
    assert f"Pay now: {notifications.checkout_url(unpaid)}" in message.body
    assert f'href="{notifications.checkout_url(unpaid)}"' in _html(message)
    assert notifications.checkout_url(unpaid).endswith(_checkout_path(unpaid))


# --- the next installment, ahead of its day ----------------------------------------------------------------------


def _balance_due_in(booking: Booking, days: int) -> Installment:
    due_on = timezone.localdate() + dt.timedelta(days=days)
    Installment.objects.filter(schedule__booking=booking, sequence=2).update(due_on=due_on)
    return Installment.objects.get(schedule__booking=booking, sequence=2)


def test_the_payer_hears_of_the_next_installment_once_a_week_ahead_with_the_card_it_goes_on(world):
    _terms(world)
    today = timezone.localdate()
    with tenant_context(world.tenant):
        booking = _confirmed_with_balance_due(world, "upcoming")
        booking.schedule.__class__.objects.filter(booking=booking).update(
            payment_method_reference="pm_saved", payment_method_summary="Visa •••• 4242"
        )
        _balance_due_in(booking, 8)
        assert installments.remind_upcoming(today) == 0  # not yet: 7 days ahead by default
        balance = _balance_due_in(booking, 7)
        assert installments.remind_upcoming(today) == 1
        assert installments.remind_upcoming(today) == 0  # once per installment and day
        [event] = OutboxEvent.objects.filter(
            name="payment.installment_upcoming", aggregate_id=str(booking.pk)
        )
        assert (event.payload["amount"], event.payload["due_on"], event.payload["card"]) == (
            BALANCE,
            balance.due_on.isoformat(),
            "Visa •••• 4242",
        )
        consumers.email_installment_upcoming(event)
        [notification] = _send_all(booking)
        assert notification.kind == "upcoming_payment"

    [message] = mail.outbox
    day = balance.due_on
    assert message.subject == f"Your next payment for booking {booking.reference}"
    assert f"Your next installment of €150.00 is due on {day:%B} {day.day}, {day.year}." in message.body
    assert "We will charge it to your card Visa •••• 4242 that day" in message.body
    assert f"Pay now: {notifications.checkout_url(booking)}" in message.body
    assert "Visa •••• 4242" in _html(message)


def test_without_a_saved_card_the_reminder_asks_to_pay_by_the_day_in_the_bookings_language(world):
    _terms(world)
    with tenant_context(world.tenant):
        booking = _confirmed_with_balance_due(world, "upcoming-de", language="de")
        _balance_due_in(booking, 3)
        assert installments.remind_upcoming() == 1
        event = OutboxEvent.objects.get(name="payment.installment_upcoming", aggregate_id=str(booking.pk))
        assert event.payload["card"] == ""
        consumers.email_installment_upcoming(event)
        _send_all(booking)

    [message] = mail.outbox
    assert message.subject == f"Ihre nächste Zahlung für die Buchung {booking.reference}"
    assert "150,00\xa0€" in message.body and "auf der Seite Ihrer Buchung" in message.body
    assert "Karte" not in message.body


def test_no_reminder_when_paid_early_or_when_the_terms_send_none(world):
    _terms(world)
    with tenant_context(world.tenant):
        paid = _confirmed_with_balance_due(world, "paid-early")
        _balance_due_in(paid, 5)
        record_offline_payment(paid, amount=BALANCE, method="cash", reference="early", actor=clerk(world))
        assert installments.remind_upcoming() == 0

        quiet = _confirmed_with_balance_due(world, "quiet")
        _balance_due_in(quiet, 5)
        schedule = quiet.schedule.__class__.objects.get(booking=quiet)
        schedule.terms = {**schedule.terms, "reminder_days_before": 0}
        schedule.save(update_fields=["terms"])
        assert installments.remind_upcoming() == 0
        assert not OutboxEvent.objects.filter(name="payment.installment_upcoming").exists()


def test_the_reminder_tells_what_will_be_charged_that_day_and_waits_while_an_earlier_one_is_dunned(world):
    with tenant_context(world.tenant):
        PaymentTerms.objects.create(
            name="Thirds", kind="installments", installment_count=3, balance_days_before=0, is_default=True
        )
        booking = services.create_booking(
            holds=[world.hold("thirds")], lead=LEAD, channel="retail", language="en"
        )
        first, second, third = Installment.objects.filter(schedule__booking=booking).order_by("sequence")
        record_offline_payment(
            booking, amount=first.amount, method="cash", reference="1st", actor=clerk(world)
        )
        booking = services.confirm_booking(Booking.objects.get(pk=booking.pk))
        today = timezone.localdate()
        # The second is being dunned (its card was declined); the third falls due in 5 days.
        Installment.objects.filter(pk=second.pk).update(due_on=today - dt.timedelta(days=1), dunning="failed")
        Installment.objects.filter(pk=third.pk).update(due_on=today + dt.timedelta(days=5))
        assert installments.remind_upcoming(today) == 0  # the second leads: its retries take the third along

        # Both fall due on the same day: one reminder, for what will be charged that day.
        Installment.objects.filter(pk=second.pk).update(due_on=today + dt.timedelta(days=5), dunning="")
        assert installments.remind_upcoming(today) == 1
        [event] = OutboxEvent.objects.filter(
            name="payment.installment_upcoming", aggregate_id=str(booking.pk)
        )
        assert (event.payload["sequence"], event.payload["amount"]) == (2, second.amount + third.amount)
        assert installments.remind_upcoming(today) == 0
