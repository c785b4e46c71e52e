"""Booking emails: queued once per event by the consumers, rendered in the booking's language (HTML + text), sent by
a task that retries transient failures and logs every outcome on the Notification row; reminders before departure;
anymail-compatible tags and metadata; staff resends."""

from __future__ import annotations

import datetime as dt
import smtplib
import time
from zoneinfo import ZoneInfo

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from icalendar import Calendar

from bookings import services, tasks
from bookings.handlers import emails as consumers
from bookings.models import Booking, Notification
from bookings.services import TravellerDetails, documents, notifications
from core.errors import ConflictError
from events.models import OutboxEvent
from events.outbox import publish
from inventory.services import place_hold
from payments import handlers as payment_consumers
from tenants.context import NoTenantError, tenant_context
from tenants.models import AuditEvent
from tenants.tasking import TENANT_HEADER
from tests.bookings.world import LEAD, World
from tests.catalogue import make_departure
from tests.factories import host_of, make_user
from tests.workers import wait_until_idle
from tourops.celery import app
from tours.models import Tour

Kind = Notification.Kind


@pytest.fixture(autouse=True)
def _no_voucher_wait(monkeypatch):
    # Eager task runs ignore countdowns: waiting for a voucher another consumer makes would spin.
    monkeypatch.setattr(notifications, "VOUCHER_WAIT", dt.timedelta(0))


@pytest.fixture
def world(db):
    return World()


def _event(booking: Booking, name: str) -> OutboxEvent:
    return OutboxEvent.objects.filter(aggregate_id=str(booking.pk), name=name).latest("created_at")


def _publish(booking: Booking, name: str, payload: dict) -> OutboxEvent:
    with transaction.atomic():
        return publish(name, booking, payload)


def _notification(booking: Booking, kind: str, language: str = "en") -> Notification:
    return Notification.objects.create(
        booking=booking,
        kind=kind,
        key=f"test-{kind}-{language}",
        recipient=notifications.recipient_of(booking),
        language=language,
    )


def _send_task(notification: Notification, tenant):
    return tasks.send_notification.apply((str(notification.pk),), headers={TENANT_HEADER: str(tenant.pk)})


def _booking_departing_in(world: World, key: str, hours: float) -> Booking:
    starts_at = (timezone.now() + dt.timedelta(hours=hours)).replace(microsecond=0)
    departure = make_departure(world.option, capacity=10, starts_at=starts_at)
    hold = place_hold(departure, {"adult": 1}, "trade", key, agency=world.agency)
    booking = services.create_booking(
        holds=[hold],
        lead=LEAD,
        channel="trade",
        language="en",
        agency=world.agency,
        on_account=True,
        travellers=[TravellerDetails(unit_code="adult", first_name="Zoé", last_name="O'Brien")],
    )
    return services.confirm_booking(booking)


# --- rendering -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", Kind.values)
def test_each_kind_renders_html_and_text_in_the_bookings_language(world, kind):
    with tenant_context(world.tenant):
        Tour.objects.filter(pk=world.tour.pk).update(meeting_point="Praça do Comércio")
        booking = _booking_departing_in(world, "render", 30)
        _publish(booking, "payment.processed", {"amount": 4200, "currency": "EUR"})
        _publish(booking, "booking.modified", {"moved_to": str(world.departure.pk), "difference": -1500})
        _publish(booking, "booking.cancelled", {"charge": 4000, "refundable": 0, "credit": 4000})
        messages = {
            language: notifications.build_message(_notification(booking, kind, language))
            for language in ("en", "fr")
        }

    english, french = messages["en"], messages["fr"]
    assert english.subject and french.subject and english.subject != french.subject
    for message in (english, french):
        assert message.to == [notifications.recipient_of(booking)]
        [(html, mimetype)] = message.alternatives
        assert mimetype == "text/html" and html.lstrip().startswith("<!doctype html>")
        assert booking.reference in message.body and booking.reference in html
        assert "{%" not in message.body and "{{" not in html
        assert "O'Brien" in message.body  # the text part is not HTML-escaped
        assert "O&#x27;Brien" in html
    # An agency's booking: addressed to the agency, naming the lead traveller
    assert f"Dear {world.agency}," in english.body and f"Bonjour {world.agency}," in french.body
    assert "Lead traveller: Ana Lima" in english.body
    assert '<html lang="fr">' in french.alternatives[0][0]
    assert "Meeting point: Praça do Comércio" in english.body
    assert "Point de rendez-vous : Praça do Comércio" in french.body


def _retail_confirmed(world: World, key: str) -> Booking:
    """A retail booking paid in full (2 adults × 100.00 EUR), confirmed."""
    booking = services.create_booking(holds=[world.hold(key)], lead=LEAD, channel="retail", language="en")
    Booking.objects.filter(pk=booking.pk).update(paid=booking.total)
    return services.confirm_booking(booking)


def test_amounts_and_dates_follow_the_language_and_the_tours_time_zone(world):
    with tenant_context(world.tenant):
        booking = _retail_confirmed(world, "money")
        _publish(booking, "payment.processed", {"amount": 123456, "currency": "EUR"})
        receipt_en = notifications.build_message(_notification(booking, Kind.RECEIPT, "en"))
        receipt_fr = notifications.build_message(_notification(booking, Kind.RECEIPT, "fr"))
        confirmation = notifications.build_message(_notification(booking, Kind.CONFIRMATION, "de"))
        _publish(booking, "booking.modified", {"moved_to": str(world.departure.pk), "difference": -1500})
        moved = notifications.build_message(_notification(booking, Kind.MODIFIED, "en"))
        _publish(booking, "booking.cancelled", {"charge": 10000, "refundable": 10000, "credit": 10000})
        cancelled = notifications.build_message(_notification(booking, Kind.CANCELLATION, "es"))
        local_start = world.departure.starts_at.astimezone(ZoneInfo("Europe/Lisbon"))

    assert "We have received your payment of €1,234.56." in receipt_en.body
    assert "Total: €200.00\nPaid: €200.00\nBalance: €0.00" in receipt_en.body
    assert "Total : 200,00\xa0€" in receipt_fr.body
    assert "Nous avons bien reçu votre paiement de 1\u202f234,56\xa0€." in receipt_fr.body
    assert f"um {local_start:%H:%M} (Ortszeit Europe/Lisbon)" in confirmation.body
    assert "moved to a new date" in moved.body and "The new date costs €15.00 less." in moved.body
    assert "Gastos de cancelación según nuestra política de cancelación: 100,00\xa0€." in cancelled.body
    assert "Le reembolsaremos 100,00\xa0€." in cancelled.body


def test_a_trade_bookings_emails_never_show_the_agencys_net_price_to_its_client(world):
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("net", 2)  # 2 × 80.00 EUR net
        _publish(booking, "payment.processed", {"amount": 16000, "currency": "EUR"})
        _publish(booking, "booking.cancelled", {"charge": 8000, "refundable": 8000, "credit": 8000})
        sendable = [kind for kind in Kind.values if not notifications.reason_not_to_send(booking, kind)]
        messages = [notifications.build_message(_notification(booking, kind)) for kind in Kind.values]
        assert notifications.reason_not_to_send(booking, Kind.RECEIPT) == "the agency pays, not the traveller"
    assert sendable == ["confirmation", "reminder", "modified"]
    for message in messages:
        if message.tags[0] in ("receipt", "payment_due"):
            continue  # never sent for a trade booking
        assert "€" not in message.body and "€" not in message.alternatives[0][0], message.subject


def test_the_confirmation_carries_an_ics_with_the_departure_in_utc(world):
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("ics", 2)
        message = notifications.build_message(_notification(booking, Kind.CONFIRMATION))
        item = booking.items.get()

    [(filename, content, mimetype)] = message.attachments
    assert (filename, mimetype) == (f"booking-{booking.reference}.ics", "text/calendar")
    [event] = Calendar.from_ical(content).walk("VEVENT")
    assert str(event["UID"]) == f"{item.pk}@{host_of(world.tenant)}"
    assert event.decoded("DTSTART") == world.departure.starts_at
    assert event.decoded("DTSTART").utcoffset() == dt.timedelta(0)
    assert event.decoded("DTEND") - event.decoded("DTSTART") == dt.timedelta(minutes=240)
    assert booking.reference in str(event["DESCRIPTION"]) and "/booking/" in str(event["DESCRIPTION"])
    assert message.tags == ["confirmation"]
    assert message.metadata["booking"] == booking.reference
    assert message.reply_to == [] or message.reply_to == [world.tenant.contact_email]
    assert message.from_email.startswith(world.tenant.name)


def test_the_voucher_is_attached_when_it_exists(world):
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("voucher")
        voucher = documents.issue_voucher(booking)
        notification = notifications.queue(booking, Kind.CONFIRMATION, "with-voucher")
        assert notifications.send(notification).outcome == "sent"

    [message] = mail.outbox
    assert [(name, kind) for name, _content, kind in message.attachments] == [
        (f"booking-{booking.reference}.ics", "text/calendar"),
        (voucher.filename, "application/pdf"),
    ]
    assert message.attachments[1][1].startswith(b"%PDF")


# --- consumers, idempotency, the task --------------------------------------------------------------------------


def test_a_redelivered_event_queues_one_email_and_sends_it_once(world, django_capture_on_commit_callbacks):
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("once")
        event = _event(booking, "booking.confirmed")
        with django_capture_on_commit_callbacks() as callbacks:
            consumers.email_confirmation(event)
            consumers.email_confirmation(event)
        notification = Notification.objects.get(booking=booking)
        assert (notification.kind, notification.key, notification.status) == (
            "confirmation",
            str(event.pk),
            "queued",
        )
        assert (notification.recipient, notification.language) == (booking.agency.email, "en")
        assert len(callbacks) == 1

    assert _send_task(notification, world.tenant).get() == "sent"
    assert _send_task(notification, world.tenant).get() == "sent"  # a redelivered task: already done
    assert len(mail.outbox) == 1
    with tenant_context(world.tenant):
        notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("sent", 1)
    assert notification.sent_at is not None and notification.subject == mail.outbox[0].subject


def test_each_event_queues_its_kind(world):
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("kinds")
        consumers.email_confirmation(_event(booking, "booking.confirmed"))
        payment_consumers.email_receipt(
            _publish(booking, "payment.processed", {"amount": 100, "currency": "EUR"})
        )
        assert not booking.notifications.filter(kind="receipt")  # a trade booking: the agency pays
        retail = _retail_confirmed(world, "retail")
        payment_consumers.email_receipt(
            _publish(retail, "payment.processed", {"amount": 100, "currency": "EUR"})
        )
        assert retail.notifications.get().kind == "receipt"
        consumers.email_modified(_publish(booking, "booking.modified", {"change": "travellers"}))
        services.cancel_booking(booking, reason="Changed plans")
        consumers.email_cancellation(_event(booking, "booking.cancelled"))
        # Events are not ordered: a confirmation arriving after the cancellation queues nothing.
        consumers.email_confirmation(_publish(booking, "booking.confirmed", {}))
        kinds = sorted(Notification.objects.filter(booking=booking).values_list("kind", flat=True))
    assert kinds == ["cancellation", "confirmation", "modified"]


def test_payment_due_is_queued_for_an_unpaid_booking_only(world):
    with tenant_context(world.tenant):
        unpaid = services.create_booking(
            holds=[world.hold("due")], lead=LEAD, channel="retail", language="fr"
        )
        consumers.email_payment_due(_publish(unpaid, "booking.awaiting_payment", {}))
        [notification] = Notification.objects.filter(booking=unpaid)
        assert notification.language == "fr"
        assert notifications.send(notification).outcome == "sent"
    assert "200,00" in mail.outbox[0].body  # 2 adults × 100.00, due now


class _FlakyBackend(BaseEmailBackend):
    """Fails the first ``failures`` sends with a transient SMTP error."""

    failures = 0
    calls = 0

    def send_messages(self, messages):
        type(self).calls += 1
        if type(self).calls <= type(self).failures:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        mail.outbox.extend(messages)
        return len(messages)


@pytest.fixture
def flaky(settings):
    settings.EMAIL_BACKEND = f"{__name__}._FlakyBackend"
    _FlakyBackend.calls = 0
    return _FlakyBackend


def test_a_transient_failure_is_retried_until_sent(world, flaky):
    flaky.failures = 2
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("flaky")
        notification = notifications.queue(booking, Kind.CONFIRMATION, "flaky")

    assert _send_task(notification, world.tenant).get() == "sent"
    with tenant_context(world.tenant):
        notification.refresh_from_db()
    assert (notification.status, notification.attempts, notification.last_error) == ("sent", 3, "")
    assert len(mail.outbox) == 1


def test_a_failure_that_persists_ends_failed_with_the_error_after_five_attempts(world, flaky):
    flaky.failures = 99
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("down")
        notification = notifications.queue(booking, Kind.CONFIRMATION, "down")

    assert _send_task(notification, world.tenant).get() == "failed"
    with tenant_context(world.tenant):
        notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("failed", notifications.MAX_ATTEMPTS)
    assert notification.last_error == "SMTPServerDisconnected: Connection unexpectedly closed"
    assert flaky.calls == notifications.MAX_ATTEMPTS and mail.outbox == []


def test_retries_back_off_exponentially():
    delays = [notifications.retry_delay(attempt) for attempt in range(1, 5)]
    # ×4 per attempt, ±20 % jitter: at worst 4 × 0.8 / 1.2 ≈ 2.7 times the previous delay
    assert all(later > 2.6 * earlier for earlier, later in zip(delays, delays[1:], strict=False))
    assert 24 <= delays[0] <= 36


def test_a_rendering_error_fails_at_once_without_retrying(world, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("bad template data")

    monkeypatch.setattr(notifications, "email_context", broken)
    with tenant_context(world.tenant):
        notification = notifications.queue(world.confirmed_booking("bug"), Kind.CONFIRMATION, "bug")
        assert notifications.send(notification).outcome == "failed"
        notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("failed", 1)
    assert "bad template data" in notification.last_error


# --- reminders -------------------------------------------------------------------------------------------------


def test_reminders_go_once_to_confirmed_bookings_departing_within_48_hours(
    world, django_capture_on_commit_callbacks
):
    with tenant_context(world.tenant):
        soon = _booking_departing_in(world, "soon", 30)
        later = world.confirmed_booking("later")  # 30 days ahead
        cancelled = services.cancel_booking(_booking_departing_in(world, "cancelled", 20), reason="Ill")
        unconfirmed = services.create_booking(
            holds=[place_hold(soon.items.get().departure, {"adult": 1}, "retail", "unconfirmed")],
            lead=LEAD,
            channel="retail",
            language="en",
        )

    with django_capture_on_commit_callbacks() as callbacks:
        assert tasks.send_reminders() == 1
        assert tasks.send_reminders() == 0
    assert len(callbacks) == 1
    with tenant_context(world.tenant):
        reminders = Notification.objects.filter(kind=Kind.REMINDER)
        assert [(n.booking_id, n.key) for n in reminders] == [(soon.pk, "reminder-48h")]
        assert not Notification.objects.filter(
            booking__in=[later, cancelled, unconfirmed], kind=Kind.REMINDER
        )
        assert notifications.send(reminders.get()).outcome == "sent"
    assert "Zoé O'Brien" in mail.outbox[0].body


def test_a_reminder_for_a_booking_cancelled_meanwhile_is_not_sent(world):
    with tenant_context(world.tenant):
        booking = _booking_departing_in(world, "gone", 30)
        assert notifications.queue_due_reminders() == 1
        services.cancel_booking(booking, reason="Changed plans")
        reminder = Notification.objects.get(booking=booking, kind=Kind.REMINDER)

    assert _send_task(reminder, world.tenant).get() == "skipped"
    with tenant_context(world.tenant):
        reminder.refresh_from_db()
    assert (reminder.status, reminder.last_error) == ("failed", "skipped: booking cancelled")
    assert mail.outbox == []


def test_never_tried_notifications_are_asked_for_again(world, django_capture_on_commit_callbacks):
    with tenant_context(world.tenant):
        notification = notifications.queue(world.confirmed_booking("lost"), Kind.CONFIRMATION, "lost")
        assert notifications.requeue_lost() == 0
        later = timezone.now() + notifications.LOST_AFTER
        with django_capture_on_commit_callbacks() as callbacks:
            assert notifications.requeue_lost(now=later) == 1
        assert len(callbacks) == 1
        notifications.send(notification)
        assert notifications.requeue_lost(now=later) == 0


# --- anymail, resend -------------------------------------------------------------------------------------------


def test_anymail_backends_get_tags_metadata_and_give_the_message_id(world, settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("esp")
        notification = notifications.queue(booking, Kind.CONFIRMATION, "esp")
        assert notifications.send(notification).outcome == "sent"
        notification.refresh_from_db()

    [message] = mail.outbox
    params = message.anymail_test_params
    assert params["tags"] == ["confirmation"]
    assert params["metadata"] == {
        "tenant": world.tenant.slug,
        "booking": booking.reference,
        "notification": str(notification.pk),
    }
    assert notification.provider_message_id == str(message.anymail_status.message_id)


def test_staff_resend_an_email_as_a_new_logged_row(world, django_capture_on_commit_callbacks):
    staff = make_user()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("again")
        first = notifications.queue(booking, Kind.CONFIRMATION, "first")
        notifications.send(first)
        with django_capture_on_commit_callbacks() as callbacks:
            again = notifications.resend(booking, Kind.CONFIRMATION, actor=staff)
        assert again.pk != first.pk and again.key != first.key and again.status == "queued"
        assert len(callbacks) == 1
        assert AuditEvent.objects.filter(target_id=str(booking.pk), actor_id=str(staff.pk)).exists()

        with pytest.raises(ConflictError) as refused:
            notifications.resend(booking, Kind.CANCELLATION, actor=staff)
        assert refused.value.code == "email_not_applicable"

    assert _send_task(again, world.tenant).get() == "sent"
    assert len(mail.outbox) == 2 and mail.outbox[0].subject == mail.outbox[1].subject
    with tenant_context(world.tenant):
        assert (
            Notification.objects.filter(booking=booking, kind=Kind.CONFIRMATION, status="sent").count() == 2
        )


# --- end to end, with a real worker ----------------------------------------------------------------------------


@app.task(name="tests.bookings.close_connections")
def _close_connections() -> None:
    connections.close_all()


@pytest.fixture(scope="module")
def worker():
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as running:
        yield running
        _close_connections.delay()
        time.sleep(0.5)


def test_a_confirmed_booking_gets_its_email_from_the_worker_with_voucher_and_calendar(
    worker, transactional_db, monkeypatch
):
    monkeypatch.setattr(notifications, "VOUCHER_WAIT", dt.timedelta(seconds=30))
    monkeypatch.setattr(notifications, "VOUCHER_POLL_SECONDS", 0.3)
    monkeypatch.setattr(notifications, "VOUCHER_BACKSTOP_SECONDS", 1)
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("e2e")

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with tenant_context(world.tenant):
            sent = Notification.objects.filter(booking=booking, status="sent").first()
        if sent is not None:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("timed out waiting for the confirmation email")

    assert sent.kind == "confirmation" and sent.attempts == 1
    [message] = [m for m in mail.outbox if booking.reference in m.subject]
    attached = [mimetype for _name, _content, mimetype in message.attachments]
    assert attached == ["text/calendar", "application/pdf"]  # it waited for the voucher
    wait_until_idle()  # the invoice PDF and the backstop task: done before the test database is flushed


def test_sending_locks_only_the_notification_row(world):
    # The lock is held across the SMTP call: the booking and tenant rows must stay free for services and inserts.
    with tenant_context(world.tenant):
        notification = notifications.queue(world.confirmed_booking("lock"), Kind.CONFIRMATION, "lock")
        with CaptureQueriesContext(connection) as queries:
            notifications.send(notification)
    [locking] = [query["sql"] for query in queries if "FOR UPDATE" in query["sql"]]
    assert locking.endswith('FOR UPDATE OF "bookings_notification"')


def test_the_send_task_needs_the_tenant_header(world):
    with tenant_context(world.tenant):
        notification = notifications.queue(world.confirmed_booking("header"), Kind.CONFIRMATION, "header")
    with pytest.raises(NoTenantError):
        tasks.send_notification.apply((str(notification.pk),), throw=True)
    assert mail.outbox == []


def test_a_confirmation_waits_for_the_voucher_and_goes_as_soon_as_it_is_made(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    from bookings.handlers import documents as document_consumers

    sent = []
    monkeypatch.setattr(
        tasks.send_notification, "apply_async", lambda args, kwargs=None, **options: sent.append(options)
    )
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("wait", adults=1)
        confirmed = OutboxEvent.objects.get(aggregate_id=str(booking.pk), name="booking.confirmed")
        with django_capture_on_commit_callbacks(execute=True):
            consumers.email_confirmation(confirmed)  # before the voucher: only the backstop, later
        assert [options["countdown"] for options in sent] == [notifications.VOUCHER_BACKSTOP_SECONDS]

        with django_capture_on_commit_callbacks(execute=True):
            document_consumers.voucher(confirmed)  # the voucher exists: the email goes now
        assert [options["countdown"] for options in sent] == [notifications.VOUCHER_BACKSTOP_SECONDS, None]


def test_an_agencys_booking_is_emailed_to_the_agency_and_a_travellers_to_the_traveller(world):
    with tenant_context(world.tenant):
        trade = world.confirmed_booking("agency", adults=1)
        retail = services.create_booking(
            holds=[world.hold("retail", {"adult": 1})], lead=LEAD, channel="retail", language="en"
        )
        to_agency = notifications.build_message(_notification(trade, Kind.CONFIRMATION))
        to_traveller = notifications.build_message(_notification(retail, Kind.PAYMENT_DUE))
    assert notifications.recipient_of(trade) == world.agency.email
    assert notifications.recipient_of(retail) == LEAD.email
    assert f"Dear {world.agency}," in to_agency.body
    assert f"Dear {LEAD.name}," in to_traveller.body
