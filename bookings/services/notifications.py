"""Booking emails: queued by event consumers (and the reminder beat), sent by a Celery task, logged in
``Notification``.

One row per email. ``queue`` is idempotent by (booking, kind, key) — the key is the event id, so a redelivered
event queues nothing — and asks a worker to send once the row is committed. ``send`` renders the email in the
booking's language, checks first that it still makes sense (events are not ordered: a reminder for a booking
cancelled meanwhile is not sent), sends it and records the outcome on the row; transient failures (SMTP,
connection, the provider's API) are retried with exponential backoff up to ``MAX_ATTEMPTS``.

Amounts an email reports at the time of its event (a payment received, a cancellation's charge) come from the
event's payload, found again by the notification's key: retries, the lost-task sweep and resends render the same
email without storing a copy of the payload.

Emails about money (receipts, failed or upcoming installments, refunds) are the payments app's: it tells this
module when each makes sense and what it shows (``register_kind``), and queues them from its own consumers.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.utils import parseaddr
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from anymail.exceptions import AnymailAPIError
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Exists, Min, OuterRef
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from icalendar import Calendar, Event

from bookings.links import manage_token, manage_url
from bookings.locks import lock_booking
from bookings.models import Booking, Document, Notification
from bookings.selectors import first_start
from bookings.services.documents import current_voucher
from core.errors import ConflictError, DomainError
from core.ids import uuid7
from core.locking import UPDATE, lock_row
from events.models import OutboxEvent
from tenants import audit, tasking
from tenants.context import require_tenant_id
from tenants.routing import public_base_url
from tours.models import TourTranslation, UnitType

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

Kind = Notification.Kind
Status = Booking.Status

MAX_ATTEMPTS = 5
REMINDER_KEY = "reminder-48h"
REMINDER_AHEAD = dt.timedelta(hours=48)
# A confirmation waits this long for the voucher (made by another consumer of the same event) before it goes
# without it; the manage page offers the voucher either way.
VOUCHER_WAIT = dt.timedelta(seconds=60)
VOUCHER_BACKSTOP_SECONDS = 20
VOUCHER_POLL_SECONDS = 3
LOST_AFTER = dt.timedelta(minutes=10)  # a queued, never-tried notification this old lost its task

# The event each of the bookings' own kinds reports (its payload is the email's "at the time" data).
EVENT_OF_KIND: dict[str, str] = {
    Kind.CONFIRMATION: "booking.confirmed",
    Kind.PAYMENT_DUE: "booking.awaiting_payment",
    Kind.MODIFIED: "booking.modified",
    Kind.CANCELLATION: "booking.cancelled",
}
# smtplib's errors and socket/connection errors are OSErrors; an ESP's HTTP API failure is AnymailAPIError.
TRANSIENT_ERRORS = (OSError, AnymailAPIError, SoftTimeLimitExceeded)


@dataclass(frozen=True)
class EmailKind:
    """An email another app sends about a booking (the payments app: receipts, dunning, refunds), told here what
    the booking's mailer needs to know of it."""

    event: str  # the event it reports
    reason_not_to_send: Callable[[Booking], str]  # for the booking as it is now ("" to send)
    context: Callable[[Notification, dict, str], dict]  # what its template shows, from the event's payload
    payload: dict = field(default_factory=dict)  # kinds sharing an event tell its payloads apart by these
    traveller_pays: bool = False  # asks the traveller for money: never sent for an agency's booking


OTHER_KINDS: dict[str, EmailKind] = {}


def register_kind(kind: str, email: EmailKind) -> None:
    if kind not in Kind.values:
        raise ValueError(f"{kind!r} is not a Notification.Kind")
    OTHER_KINDS[kind] = email


# --- when an email makes sense ---------------------------------------------------------------------------------


def reason_not_to_send(booking: Booking, kind: str, *, now: dt.datetime | None = None) -> str:
    """Why an email of ``kind`` no longer makes sense for the booking as it is now ("" when it does)."""
    status = booking.status
    label = booking.get_status_display().lower()
    if kind == Kind.CONFIRMATION:
        return "" if status == Status.CONFIRMED else f"booking {label}"
    if kind == Kind.REMINDER:
        if status != Status.CONFIRMED:
            return f"booking {label}"
        first = first_start(booking)
        if first is None or first <= (now or timezone.now()):
            return "departure already started"
        return ""
    other = OTHER_KINDS.get(kind)
    # Emails asking the traveller for money are never for an agency's booking (the agency is invoiced and pays on
    # its own terms).
    if (
        kind == Kind.PAYMENT_DUE or (other is not None and other.traveller_pays)
    ) and booking.agency_id is not None:
        return "the agency pays, not the traveller"
    if other is not None:
        return other.reason_not_to_send(booking)
    if kind == Kind.PAYMENT_DUE:
        if status not in (Status.ON_HOLD, Status.AWAITING_PAYMENT):
            return f"booking {label}"
        return "" if booking.balance > 0 else "nothing due"
    if kind == Kind.MODIFIED:
        return (
            ""
            if status in (Status.ON_HOLD, Status.AWAITING_PAYMENT, Status.CONFIRMED)
            else f"booking {label}"
        )
    if kind == Kind.CANCELLATION:
        return "" if status in (Status.CANCELLED, Status.REFUNDED) else f"booking {label}"
    return f"unknown kind {kind!r}"


# --- queuing ---------------------------------------------------------------------------------------------------


def queue_for_event(event: OutboxEvent, kind: str) -> None:
    """An outbox consumer's email: queued under the event's id, unless it no longer makes sense."""
    if event.aggregate_type != Booking._meta.label_lower:
        logger.warning("%s is about a %s, not a booking: no email", event.name, event.aggregate_type)
        return
    booking = Booking.objects.get(pk=event.aggregate_id)
    reason = reason_not_to_send(booking, kind)
    if reason:
        logger.info("no %s email for %s after %s: %s", kind, booking.reference, event.name, reason)
        return
    queue(booking, kind, str(event.pk))


def checkout_url(booking: Booking) -> str:
    """Absolute link to the booking's checkout page (pay what is due now), on the tenant's primary host."""
    return public_base_url(booking.tenant) + reverse(
        "retail:checkout", kwargs={"token": manage_token(booking)}
    )


def recipient_of(booking: Booking) -> str:
    """Who gets a booking's emails: the agency (its bookings address) for an agency's booking — the agency is the
    customer and passes the voucher on — else the lead traveller."""
    agency = booking.agency  # None without a query when agency_id is None
    if agency is not None and agency.email:
        return agency.email
    return booking.lead_email


def queue(booking: Booking, kind: str, key: str, *, context_extra: dict | None = None) -> Notification | None:
    """Log an email to the lead customer and have a worker send it after this transaction commits. None if this
    (booking, kind, key) was queued before. ``context_extra`` (JSON values) travels in the task message only: a
    resend or the lost-task sweep renders without it."""
    if kind not in Kind.values:
        raise DomainError(f"Unknown email kind {kind!r}.", code="invalid", fields={"kind": [kind]})
    if Notification.objects.filter(booking=booking, kind=kind, key=key).exists():
        return None
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                booking=booking,
                kind=kind,
                key=key,
                recipient=recipient_of(booking),
                language=booking.language or settings.LANGUAGE_CODE,
            )
    except IntegrityError:  # queued concurrently by a redelivery of the same event
        return None
    voucher, voucher_expected = None, False
    if kind == Kind.CONFIRMATION:
        # Under the booking's row lock, which the voucher's consumer holds from storing the voucher until it has
        # sent the confirmations waiting for it: one of the two always sees the other's row.
        lock_booking(booking)
        voucher, voucher_expected = _voucher(booking)
    if voucher is None and voucher_expected:
        # The voucher's consumer sends it as soon as the voucher exists (send_waiting_confirmations); this later
        # task is the backstop if the voucher never comes.
        _send_after_commit(notification, context_extra, countdown=VOUCHER_BACKSTOP_SECONDS)
    else:
        _send_after_commit(notification, context_extra)
    return notification


def send_waiting_confirmations(booking: Booking) -> int:
    """Send the booking's confirmations that were waiting for its voucher (called once the voucher exists)."""
    waiting = list(
        Notification.objects.filter(
            booking=booking, kind=Kind.CONFIRMATION, status=Notification.Status.QUEUED, attempts=0
        )
    )
    for notification in waiting:
        _send_after_commit(notification)
    return len(waiting)


def _send_after_commit(
    notification: Notification, context_extra: dict | None = None, *, countdown: int | None = None
) -> None:
    tenant_id = require_tenant_id()
    notification_id = str(notification.pk)

    def enqueue() -> None:
        try:
            tasking.enqueue(
                "bookings.send_notification",
                notification_id,
                tenant_id=tenant_id,
                countdown=countdown,
                **({"context_extra": context_extra} if context_extra else {}),
            )
        except Exception:  # noqa: BLE001 - the broker is down: the sweep re-sends never-tried notifications
            logger.warning("could not queue the sending of notification %s; the sweep will", notification_id)

    transaction.on_commit(enqueue)


def resend(booking: Booking, kind: str, *, actor: User | None) -> Notification:
    """Staff send an email again (a new logged row with a fresh key), if it makes sense for the booking now."""
    if kind not in Kind.values:
        raise DomainError(f"Unknown email kind {kind!r}.", code="invalid", fields={"kind": [kind]})
    booking = Booking.objects.get(pk=booking.pk)
    reason = reason_not_to_send(booking, kind)
    if reason:
        raise ConflictError(
            f"The {Kind(kind).label.lower()} email cannot be sent for booking {booking.reference}: {reason}.",
            code="email_not_applicable",
            fields={"kind": [reason]},
        )
    notification = queue(booking, kind, f"resend-{uuid7()}")
    assert notification is not None  # a fresh key: never queued before
    audit.record(
        audit.Action.CHANGE,
        actor=actor,
        target=booking,
        changes={"email_resent": [None, {"kind": kind, "notification": str(notification.pk)}]},
    )
    return notification


def queue_due_reminders(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Beat: a reminder for each confirmed booking whose first departure starts within REMINDER_AHEAD and has not
    started; once per booking (its key)."""
    now = now or timezone.now()
    reminded = Notification.objects.filter(booking=OuterRef("pk"), kind=Kind.REMINDER, key=REMINDER_KEY)
    due = (
        Booking.objects.filter(status=Status.CONFIRMED)
        .annotate(first_start=Min("items__departure__starts_at"))
        .filter(first_start__gt=now, first_start__lte=now + REMINDER_AHEAD)
        .filter(~Exists(reminded))
        .order_by("first_start")[:limit]
    )
    return sum(1 for booking in due if queue(booking, Kind.REMINDER, REMINDER_KEY) is not None)


def requeue_lost(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Beat: notifications never tried long after they were queued lost their task (the broker was down at
    commit); ask again. A duplicate task is harmless: ``send`` locks the row and sends only a queued one."""
    now = now or timezone.now()
    lost = list(
        Notification.objects.filter(
            status=Notification.Status.QUEUED, attempts=0, created_at__lte=now - LOST_AFTER
        ).order_by("created_at")[:limit]
    )
    for notification in lost:
        _send_after_commit(notification)
    return len(lost)


# --- sending ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    outcome: str  # sent, skipped, failed, retry, postponed, or the status it already had
    retry_in: int | None = None  # seconds, when the task should run again


def retry_delay(attempt: int) -> int:
    """Seconds before the attempt after ``attempt`` (1-based): about 30 s, 2 min, 8 min, 32 min (±20 %)."""
    base = 30 * 4 ** (attempt - 1)
    return max(1, round(base * random.uniform(0.8, 1.2)))


def send(notification: Notification, *, context_extra: dict | None = None) -> SendResult:
    """Send a queued notification once and record the outcome on its row (the log)."""
    # Only the notification row is locked (a duplicate task waits, then finds it sent): locking the joined booking
    # or tenant row across the SMTP call would stall the booking's services and every insert in the tenant.
    notification = lock_row(
        Notification.objects.select_related("booking", "booking__tenant"), pk=notification.pk, strength=UPDATE
    )
    if notification.status != Notification.Status.QUEUED:
        return SendResult(notification.status)  # a redelivered task: already done
    booking = notification.booking
    reason = reason_not_to_send(booking, notification.kind)
    if reason:
        notification.status = Notification.Status.FAILED
        notification.last_error = f"skipped: {reason}"
        notification.save(update_fields=["status", "last_error"])
        return SendResult("skipped")
    voucher = None
    if notification.kind in (Kind.CONFIRMATION, Kind.REMINDER):
        voucher, expected = _voucher(booking)
        if voucher is None and expected and timezone.now() - notification.created_at < VOUCHER_WAIT:
            return SendResult("postponed", retry_in=VOUCHER_POLL_SECONDS)
    notification.attempts += 1
    try:
        message = build_message(notification, voucher=voucher, context_extra=context_extra)
    except Exception as error:  # a bug or bad data: retrying cannot help
        logger.exception("notification %s could not be rendered", notification.pk)
        return _record_failure(notification, error, final=True)
    notification.subject = message.subject[: Notification._meta.get_field("subject").max_length]
    try:
        message.send()
    except TRANSIENT_ERRORS as error:
        logger.warning(
            "sending notification %s failed (attempt %d): %s", notification.pk, notification.attempts, error
        )
        return _record_failure(notification, error, final=notification.attempts >= MAX_ATTEMPTS)
    except Exception as error:
        logger.exception("sending notification %s failed", notification.pk)
        return _record_failure(notification, error, final=True)
    status = getattr(message, "anymail_status", None)
    message_id = getattr(status, "message_id", None)
    notification.status = Notification.Status.SENT
    notification.sent_at = timezone.now()
    notification.last_error = ""
    notification.provider_message_id = "" if message_id is None else str(message_id)[:200]
    notification.save(
        update_fields=["status", "sent_at", "attempts", "subject", "last_error", "provider_message_id"]
    )
    return SendResult("sent")


def _record_failure(notification: Notification, error: Exception, *, final: bool) -> SendResult:
    notification.last_error = f"{type(error).__name__}: {error}"[:2000]
    if final:
        notification.status = Notification.Status.FAILED
    notification.save(update_fields=["status", "attempts", "subject", "last_error"])
    if final:
        return SendResult("failed")
    return SendResult("retry", retry_in=retry_delay(notification.attempts))


def _voucher(booking: Booking) -> tuple[Document | None, bool]:
    """(the booking's current voucher or None, whether one is expected)."""
    return current_voucher(booking), booking.status == Status.CONFIRMED


def build_message(
    notification: Notification, *, voucher: Document | None = None, context_extra: dict | None = None
) -> EmailMultiAlternatives:
    """The email, rendered in the notification's language, with what its kind attaches."""
    booking = notification.booking
    tenant = booking.tenant
    kind = notification.kind
    with translation.override(notification.language):
        context = email_context(notification, context_extra=context_extra)
        context["has_voucher"] = voucher is not None
        subject = " ".join(render_to_string(f"emails/bookings/{kind}_subject.txt", context).split())
        text = render_to_string(f"emails/bookings/{kind}.txt", context)
        html = render_to_string(f"emails/bookings/{kind}.html", context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=_from_address(tenant.name),
        to=[notification.recipient],
        reply_to=[tenant.contact_email] if tenant.contact_email else None,
        headers={"Auto-Submitted": "auto-generated"},
    )
    message.attach_alternative(html, "text/html")
    # django-anymail reads these (other backends ignore them): tag and metadata for the ESP's reporting/webhooks.
    # The stubs' EmailMultiAlternatives has no such attributes: they are anymail's extension of the message.
    message.tags = [kind]  # type: ignore[attr-defined]
    message.metadata = {  # type: ignore[attr-defined]
        "tenant": tenant.slug,
        "booking": booking.reference,
        "notification": str(notification.pk),
    }
    if kind == Kind.CONFIRMATION:
        ics = calendar_for(
            booking,
            context["manage_url"],
            titles={line["item_id"]: line["tour"] for line in context["lines"]},
        )
        message.attach(f"booking-{booking.reference}.ics", ics, "text/calendar")
    if voucher is not None:
        message.attach(voucher.filename, bytes(voucher.content), "application/pdf")
    return message


def _from_address(display_name: str) -> str:
    address = parseaddr(settings.DEFAULT_FROM_EMAIL or "")[1] or settings.DEFAULT_FROM_EMAIL
    return str(Address(display_name=display_name, addr_spec=address))


# --- what the templates show -----------------------------------------------------------------------------------


def _local_when(moment: dt.datetime, time_zone: str, language: str) -> dict:
    local = moment.astimezone(ZoneInfo(time_zone))
    try:
        locale = Locale.parse(translation.to_locale(language))
    except (ValueError, UnknownLocaleError):  # a language Babel does not know: English dates beat no email
        locale = Locale("en")
    return {
        "date": format_date(local.date(), format="full", locale=locale),
        "time": format_time(local.time(), format="short", locale=locale),
        "time_zone": time_zone,
    }


def _translated_tours(booking: Booking, language: str) -> dict:
    tour_ids = {item.option.tour_id for item in booking.items.all()}
    return {
        row.tour_id: row for row in TourTranslation.objects.filter(tour_id__in=tour_ids, language=language)
    }


def email_context(notification: Notification, *, context_extra: dict | None = None) -> dict:
    booking = notification.booking
    tenant = booking.tenant
    language = notification.language
    items = list(booking.items.select_related("departure", "option__tour").order_by("departure__starts_at"))
    translated = _translated_tours(booking, language)
    unit_names = {
        (unit.tour_id, unit.code): unit.name
        for unit in UnitType.objects.filter(tour_id__in={item.option.tour_id for item in items})
    }
    lines = []
    for item in items:
        tour = item.option.tour
        translation_row = translated.get(tour.pk)
        lines.append(
            {
                "item_id": item.pk,
                "tour": (translation_row.title if translation_row else "") or tour.title,
                "option": item.option.name,
                "when": _local_when(item.departure.starts_at, tour.time_zone, language),
                "meeting_point": (translation_row.meeting_point if translation_row else "")
                or tour.meeting_point,
                "units": [
                    {"name": unit_names.get((tour.pk, code), code), "count": count}
                    for code, count in item.units.items()
                    if count
                ],
                "total": item.total,
            }
        )
    event = _event_for(notification)
    payload = dict(event.payload) if event is not None else {}
    context = {
        "booking": booking,
        "tenant": tenant,
        "site_url": public_base_url(tenant),
        "lead_name": booking.lead_name,
        "addressee": str(booking.agency) if booking.agency_id is not None else booking.lead_name,
        "reference": booking.reference,
        "currency": booking.currency,
        "total": booking.total,
        "paid": booking.paid,
        "balance": booking.balance,
        "lines": lines,
        "travellers": [f"{t.first_name} {t.last_name}".strip() for t in booking.travellers.order_by("pk")],
        "manage_url": manage_url(booking),
        "checkout_url": checkout_url(booking),
        "payload": payload,
        "kind": notification.kind,
        # A trade booking's price is the agency's net rate: its client, the lead traveller, never sees it.
        "show_prices": booking.agency_id is None,
        "for_agency": booking.agency_id is not None,
        "agent_reference": booking.agent_reference,
    }
    if notification.kind == Kind.MODIFIED:
        context["moved"] = "moved_to" in payload
        context["travellers_changed"] = payload.get("change") == "travellers"
        context["difference"] = payload.get("difference") or 0
        context["difference_abs"] = abs(context["difference"])
    if notification.kind == Kind.CANCELLATION:
        context["refundable"] = payload.get("refundable")
        context["charge"] = payload.get("charge")
    if notification.kind in OTHER_KINDS:
        context.update(OTHER_KINDS[notification.kind].context(notification, payload, language))
    context.update(context_extra or {})
    return context


def local_date(iso_date: str | None, language: str) -> str:
    """An ISO date from a payload, written out in the reader's language ("" when missing or malformed)."""
    try:
        day = dt.date.fromisoformat(iso_date or "")
    except ValueError:
        return ""
    try:
        locale = Locale.parse(translation.to_locale(language))
    except (ValueError, UnknownLocaleError):
        locale = Locale("en")
    return format_date(day, format="long", locale=locale)


def _event_for(notification: Notification) -> OutboxEvent | None:
    """The event the email reports: the one its key names, else (a resend) the booking's latest of its kind."""
    other = OTHER_KINDS.get(notification.kind)
    name = other.event if other is not None else EVENT_OF_KIND.get(notification.kind)
    if name is None:
        return None
    events = OutboxEvent.objects.filter(
        name=name, aggregate_type=Booking._meta.label_lower, aggregate_id=str(notification.booking_id)
    )
    try:
        event = events.filter(pk=uuid.UUID(notification.key)).first()
    except ValueError:
        event = None
    if event is None:
        events = events.filter(
            **{
                f"payload__{key}": value
                for key, value in (other.payload if other is not None else {}).items()
            }
        )
    return event or events.order_by("-created_at").first()


def calendar_for(booking: Booking, link: str, *, titles: dict | None = None) -> str:
    """An iCalendar file with one event per booked departure (times in UTC); ``titles``: item id → tour title in
    the reader's language."""
    host = public_base_url(booking.tenant).split("://", 1)[-1].split(":", 1)[0]
    calendar = Calendar()
    calendar.add("prodid", f"-//{booking.tenant.name}//tourops//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    now = timezone.now().astimezone(dt.UTC)
    for item in booking.items.select_related("departure", "option__tour").order_by("departure__starts_at"):
        tour = item.option.tour
        event = Event()
        event.add("uid", f"{item.pk}@{host}")
        event.add("dtstamp", now)
        event.add("dtstart", item.departure.starts_at.astimezone(dt.UTC))
        event.add("dtend", item.departure.ends_at.astimezone(dt.UTC))
        title = (titles or {}).get(item.pk) or tour.title
        event.add("summary", f"{title} ({booking.reference})")
        if tour.meeting_point:
            event.add("location", tour.meeting_point)
        event.add("description", f"{booking.tenant.name} · {booking.reference}\n{link}")
        event.add("url", link)
        calendar.add_component(event)
    return calendar.to_ical().decode()
