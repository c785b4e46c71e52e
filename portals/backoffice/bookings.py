"""Back-office pages of a booking beyond the read-only admin page: the staff actions (each a small form that calls
exactly one service), document downloads and the departure manifest (page, CSV, PDF).

Hooked onto the booking's admin pages (``portals.backoffice.admin``): signed-in staff of this host's tenant. Each
action calls one service, which checks and audits it; a service's DomainError is shown as a message with the form
kept, and the action's transaction is rolled back, so nothing changes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from bookings import services
from bookings.manifest import departure_manifest, manifest_csv, manifest_filename
from bookings.models import Booking, Document, Notification
from bookings.services import notifications
from core.downloads import private_download
from core.errors import DomainError
from core.money import Money, format_money
from core.pdf import render_pdf
from events.models import OutboxEvent
from inventory.models import Departure
from payments.models import PaymentSchedule
from payments.services import installments, offline, refunds, schedules
from portals.backoffice.payments import payments_panel

Status = Booking.Status
MANIFEST_PERMISSIONS = ("bookings.view_booking", "bookings.view_traveller", "inventory.view_departure")


def _error_text(error: DomainError) -> str:
    details = []
    for name, problems in error.fields.items():
        problems = [problems] if isinstance(problems, str) else problems
        text = " ".join(str(problem) for problem in problems)
        if text and text not in error.message:
            details.append(f"{name.replace('_', ' ')}: {text}")
    return f"{error.message} ({'; '.join(details)})" if details else error.message


# --- action forms -----------------------------------------------------------------------------------------------


class ActionForm(forms.Form):
    def __init__(self, *args, booking: Booking, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.booking = booking
        self.user = user

    def minor_units(self, name: str) -> int | None:
        """A money field typed in major units ("12.50") as minor units of the booking's currency."""
        value: Decimal | None = self.cleaned_data.get(name)
        if value is None:
            return None
        try:
            return Money.from_decimal(value, self.booking.currency).amount
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None


class ConfirmForm(ActionForm):
    reason = forms.CharField(required=False, max_length=500, help_text="Kept in the status history.")


class CancelForm(ActionForm):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}))
    refundable = forms.DecimalField(
        required=False,
        min_value=0,
        label="Refundable amount (override)",
        help_text="Leave empty to refund what the cancellation policy gives back. Between 0 and what was paid.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.user.has_perm("bookings.override_refund"):
            del self.fields["refundable"]

    def clean_refundable(self):
        return self.minor_units("refundable")


class MoveForm(ActionForm):
    target = forms.ChoiceField(label="Move to", help_text="Upcoming open departures of the same tour.")
    reason = forms.CharField(required=False, max_length=500)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = move_choices(self.booking)


def move_choices(booking: Booking) -> list:
    """Per item, the other upcoming open departures of its tour with their free seats, as grouped choices whose
    value is "<item id>:<departure id>". Two queries."""
    items = list(booking.items.select_related("departure__tour", "option").order_by("departure__starts_at"))
    departures = list(
        Departure.objects.filter(
            tour_id__in={item.departure.tour_id for item in items},
            starts_at__gt=timezone.now(),
            status=Departure.Status.OPEN,
        )
        .select_related("option")
        .order_by("starts_at")[:500]
    )
    groups = []
    for item in items:
        zone = ZoneInfo(item.departure.tour.time_zone)
        label = (
            f"{item.departure.tour.title} · {item.option.name} · "
            f"{item.departure.starts_at.astimezone(zone):%Y-%m-%d %H:%M} ({item.seats} seats)"
        )
        choices = [
            (
                f"{item.pk}:{departure.pk}",
                f"{departure.starts_at.astimezone(zone):%a %Y-%m-%d %H:%M} · {departure.option.name} · "
                f"{max(departure.free, 0)} free",
            )
            for departure in departures
            if departure.tour_id == item.departure.tour_id and departure.pk != item.departure_id
        ]
        groups.append((label, choices or [("", "No other upcoming departure")]))
    return groups


class ResumeChargesForm(ActionForm):
    note = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What was done about it (kept in the audit trail), e.g. “Customer updated the card by phone”.",
    )
    checked_not_charged = forms.BooleanField(
        label="I checked in the Stripe dashboard: the charge without an answer did not go through",
        help_text="If it did, record it there instead of resuming, or the customer is charged twice.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not installments.unknown_outcomes(self.booking):
            del self.fields["checked_not_charged"]


class ResendForm(ActionForm):
    kind = forms.ChoiceField(choices=Notification.Kind.choices, label="Email")


class PaymentForm(ActionForm):
    METHODS = [
        ("bank_transfer", "Bank transfer"),
        ("cash", "Cash"),
        ("other", "Other"),
    ]

    amount = forms.DecimalField(
        min_value=Decimal("0.001"), help_text="In the booking's currency, e.g. 120.50."
    )
    method = forms.ChoiceField(choices=METHODS)
    reference = forms.CharField(required=False, max_length=100, help_text="Bank reference, receipt number…")

    def clean_amount(self):
        return self.minor_units("amount")


class RefundForm(ActionForm):
    amount = forms.DecimalField(
        min_value=Decimal("0.001"),
        help_text="In the booking's currency, e.g. 120.50; at most the refundable amount.",
    )
    reason = forms.CharField(
        max_length=500, widget=forms.Textarea(attrs={"rows": 3}), help_text="Kept with the refund."
    )
    # A fresh key per rendered form: a double submit (or a browser resend) of the same form refunds once.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["idempotency_key"] = f"backoffice:{uuid.uuid4()}"

    def clean_amount(self):
        amount = self.minor_units("amount")
        # Said on the field at once; the service decides again under the booking's lock (a refund made meanwhile).
        available = refunds.refundable(self.booking)
        if amount is not None and amount > available:
            raise forms.ValidationError(
                f"At most {format_money(available, self.booking.currency)}: what was paid, less refunds made or under way."
            )
        return amount


# --- what each action does ----------------------------------------------------------------------------------


def _confirm(request, booking: Booking, data: dict) -> str:
    booking = services.confirm_booking(booking, actor=request.user, reason=data["reason"], request=request)
    return f"Booking {booking.reference} is confirmed."


def _cancel(request, booking: Booking, data: dict) -> str:
    booking = services.cancel_booking(
        booking,
        actor=request.user,
        reason=data["reason"],
        refundable_override=data.get("refundable"),
        request=request,
    )
    return f"Booking {booking.reference} is cancelled."


def _move(request, booking: Booking, data: dict) -> str:
    item_id, departure_id = data["target"].split(":")
    item = booking.items.select_related("departure").get(pk=item_id)
    departure = Departure.objects.select_related("option").get(pk=departure_id)
    services.move_departure(
        booking, item, departure, actor=request.user, reason=data["reason"], request=request
    )
    return f"Booking {booking.reference} moved to {departure}."


def _resend(request, booking: Booking, data: dict) -> str:
    notifications.resend(booking, data["kind"], actor=request.user)  # audited by the service
    return f"The “{Notification.Kind(data['kind']).label}” email is on its way again."


def _payment(request, booking: Booking, data: dict) -> str:
    offline.record_offline_payment(  # audited by the service
        booking,
        amount=data["amount"],
        method=data["method"],
        reference=data["reference"],
        actor=request.user,
        request=request,
    )
    return f"Payment of {format_money(data['amount'], booking.currency)} recorded on {booking.reference}."


def _refund(request, booking: Booking, data: dict) -> str:
    parts = refunds.request_refund(  # audited by the service
        booking,
        amount=data["amount"],
        reason=data["reason"],
        request_key=data["idempotency_key"],
        actor=request.user,
        request=request,
    )
    offline = sum(1 for part in parts if part.payment.provider == "offline")
    later = (
        f" {offline} part{'s' if offline != 1 else ''} paid offline stay{'s' if offline == 1 else ''} pending until "
        "the money is sent back and recorded on the refund list."
        if offline
        else ""
    )
    return (
        f"Refund of {format_money(data['amount'], booking.currency)} requested on {booking.reference}.{later}"
    )


def _resume_charges(request, booking: Booking, data: dict) -> str:
    reset = installments.resume_automatic_charges(  # audited by the service
        booking,
        note=data["note"],
        actor=request.user,
        request=request,
        checked_not_charged=bool(data.get("checked_not_charged")),
    )
    return (
        f"Automatic charges of {booking.reference} resume: {reset} unpaid installment"
        f"{'s' if reset != 1 else ''} will be tried again from the first attempt."
    )


def _charges_paused(booking: Booking) -> bool:
    return (
        booking.status == Status.CONFIRMED
        and PaymentSchedule.objects.filter(booking=booking, needs_attention=True).exists()
    )


def _refund_context(booking: Booking) -> dict:
    return {
        "terms_caption": "What can be refunded",
        "terms_rows": [("Refundable (maximum)", format_money(refunds.refundable(booking), booking.currency))],
    }


def _refundable(booking: Booking) -> bool:
    return refunds.refundable(booking) > 0


def _cancel_context(booking: Booking) -> dict:
    terms = services.cancellation_terms(booking)
    return {
        "terms": terms,
        "terms_rows": [
            ("Refund percent of the price", f"{terms.refund_percent} %"),
            ("Charge (kept)", format_money(terms.charge, booking.currency)),
            ("Credit note", format_money(terms.credit, booking.currency)),
            ("Refundable of what was paid", format_money(terms.refundable, booking.currency)),
            ("Paid so far", format_money(booking.paid, booking.currency)),
        ],
    }


EMAILABLE = (
    Status.ON_HOLD,
    Status.AWAITING_PAYMENT,
    Status.CONFIRMED,
    Status.COMPLETED,
    Status.CANCELLED,
    Status.REFUNDED,
    Status.NO_SHOW,
)


@dataclass(frozen=True)
class BookingAction:
    slug: str
    label: str
    permission: str
    form_class: type[ActionForm]
    is_allowed: Callable[[Booking], bool]
    perform: Callable[[HttpRequest, Booking, dict], str]
    intro: str = ""
    context: Callable[[Booking], dict] = field(default=lambda booking: {})


ACTIONS: dict[str, BookingAction] = {
    action.slug: action
    for action in [
        BookingAction(
            "confirm",
            "Confirm",
            "bookings.change_booking",
            ConfirmForm,
            lambda booking: Status.CONFIRMED in services.TRANSITIONS[booking.status],
            _confirm,
            "The held seats become sold. Allowed when nothing is due now: paid in full, nothing to pay, or on "
            "account within the agency's credit.",
        ),
        BookingAction(
            "cancel",
            "Cancel",
            "bookings.change_booking",
            CancelForm,
            lambda booking: Status.CANCELLED in services.TRANSITIONS[booking.status],
            _cancel,
            "The seats go back on sale. The cancellation policy decides the charge and the refund:",
            _cancel_context,
        ),
        BookingAction(
            "move",
            "Move to another date",
            "bookings.change_booking",
            MoveForm,
            lambda booking: booking.status in services.MOVABLE,
            _move,
            "The new seats are taken and the old ones given back together; the booking is priced again.",
        ),
        BookingAction(
            "resend",
            "Resend an email",
            "bookings.change_booking",
            ResendForm,
            lambda booking: booking.status in EMAILABLE,
            _resend,
            "The email is sent again to the lead customer, in the booking's language.",
        ),
        BookingAction(
            "payment",
            "Record a payment",
            "payments.add_payment",
            PaymentForm,
            lambda booking: booking.status in schedules.PAYABLE_STATUSES and booking.balance > 0,
            _payment,
            "A payment received outside the online checkout (bank transfer, cash).",
        ),
        BookingAction(
            "refund",
            "Refund",
            "payments.add_refund",
            RefundForm,
            _refundable,
            _refund,
            "Card and PayPal payments are refunded first (newest first) by the gateway; money paid offline is "
            "sent back by you and recorded on the refund list.",
            _refund_context,
        ),
        BookingAction(
            "resume-charges",
            "Resume automatic charges",
            "payments.add_payment",
            ResumeChargesForm,
            _charges_paused,
            _resume_charges,
            "Automatic charges of this booking are paused for you to look at (a charge the gateway refused or "
            "whose outcome is unknown, retries exhausted, or money taken back in a dispute). Resuming tries "
            "the unpaid installments again from the first attempt, with their emails.",
        ),
    ]
}


def available_actions(request, booking: Booking) -> list[BookingAction]:
    return [
        action
        for action in ACTIONS.values()
        if request.user.has_perm(action.permission) and action.is_allowed(booking)
    ]


def booking_action(request: HttpRequest, object_id, action: str, *, model_admin) -> HttpResponse:
    chosen = ACTIONS.get(action)
    if chosen is None:
        raise Http404("No such action.")
    if not model_admin.has_view_permission(request) or not request.user.has_perm(chosen.permission):
        raise PermissionDenied
    booking = Booking.objects.select_related("agency").filter(pk=object_id).first()
    if booking is None:
        raise Http404("No such booking.")
    change_url = reverse("admin:bookings_booking_change", args=[booking.pk])
    if not chosen.is_allowed(booking):
        messages.error(
            request,
            f"Booking {booking.reference} is {booking.get_status_display().lower()}: "
            f"“{chosen.label}” is not possible now.",
        )
        return redirect(change_url)
    form = chosen.form_class(
        request.POST if request.method == "POST" else None, booking=booking, user=request.user
    )
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                done = chosen.perform(request, booking, form.cleaned_data)
        except DomainError as error:
            messages.error(request, _error_text(error))
            booking.refresh_from_db()
        else:
            messages.success(request, done)
            return redirect(change_url)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": f"{chosen.label}: booking {booking.reference}",
        "booking": booking,
        "original": booking,
        "action": chosen,
        "form": form,
        "change_url": change_url,
        "summary": booking_summary(booking),
        **chosen.context(booking),
    }
    return TemplateResponse(request, "admin/bookings/booking/action.html", context)


# --- the booking page --------------------------------------------------------------------------------------------


def booking_summary(booking: Booking) -> list[tuple[str, str]]:
    return [
        ("Status", booking.get_status_display()),
        ("Lead customer", booking.lead_name),
        ("Total", format_money(booking.total, booking.currency)),
        ("Paid", format_money(booking.paid, booking.currency)),
        ("Balance", format_money(booking.balance, booking.currency)),
    ]


@dataclass(frozen=True)
class EventRow:
    event: OutboxEvent
    payload: str
    consumers: list
    dead_letters: list


def booking_events(booking: Booking) -> list[EventRow]:
    """The outbox events about the booking, oldest first, with the consumers that handled them and any that gave
    up. Three queries."""
    events = (
        OutboxEvent.objects.filter(aggregate_type=Booking._meta.label_lower, aggregate_id=str(booking.pk))
        .prefetch_related("processed_by", "dead_letters")
        .order_by("created_at", "id")
    )
    return [
        EventRow(
            event=event,
            payload=json.dumps(event.payload, indent=2, sort_keys=True, ensure_ascii=False),
            consumers=sorted(event.processed_by.all(), key=lambda row: row.processed_at),
            dead_letters=sorted(event.dead_letters.all(), key=lambda row: row.created_at),
        )
        for event in events
    ]


def booking_page_context(request, booking: Booking) -> dict:
    documents = list(booking.documents.defer("content").order_by("kind", "version", "created_at"))
    return {
        "booking_summary": booking_summary(booking),
        "booking_documents": [
            (document, reverse("admin:bookings_booking_document", args=[booking.pk, document.pk]))
            for document in documents
        ],
        "booking_notifications": list(booking.notifications.order_by("created_at")),
        "booking_events": booking_events(booking),
        "booking_actions": [
            (action, reverse("admin:bookings_booking_action", args=[booking.pk, action.slug]))
            for action in available_actions(request, booking)
        ],
        "booking_manifests": _manifest_links(request, booking),
        "booking_payments": _payments_panel(request, booking),
    }


def _payments_panel(request, booking: Booking) -> dict | None:
    if not request.user.has_perm("payments.view_payment"):
        return None
    return payments_panel(booking)


def _manifest_links(request, booking: Booking) -> list:
    if not all(request.user.has_perm(perm) for perm in MANIFEST_PERMISSIONS):
        return []
    departures = {
        item.departure_id: item.departure for item in booking.items.select_related("departure__option")
    }
    return [
        (departure, reverse("admin:bookings_departure_manifest", args=[departure.pk]))
        for departure in sorted(departures.values(), key=lambda departure: departure.starts_at)
    ]


def document_download(request: HttpRequest, object_id, document_id, *, model_admin) -> HttpResponse:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    document = Document.objects.filter(pk=document_id, booking_id=object_id).first()
    if document is None:
        raise Http404("No such document.")
    return private_download(document.content, document.filename, "application/pdf")


# --- the departure manifest ---------------------------------------------------------------------------------------


def departure_manifest_view(
    request: HttpRequest, departure_id, fmt: str = "html", *, model_admin
) -> HttpResponse:
    if not all(request.user.has_perm(perm) for perm in MANIFEST_PERMISSIONS):
        raise PermissionDenied
    manifest = departure_manifest(departure_id)  # another tenant's departure is invisible here: 404
    if manifest is None:
        raise Http404("No such departure.")
    if fmt == "csv":
        response = private_download(
            manifest_csv(manifest), manifest_filename(manifest, "csv"), "text/csv; charset=utf-8"
        )
    elif fmt == "pdf":
        pdf = render_pdf(
            "pdf/manifest.html",
            {
                "manifest": manifest,
                "tenant": request.tenant,
                "printed_at": timezone.now().astimezone(ZoneInfo(manifest.time_zone)),
            },
        )
        response = private_download(pdf, manifest_filename(manifest, "pdf"), "application/pdf")
    else:
        departure_opts = Departure._meta
        context = {
            **model_admin.admin_site.each_context(request),
            "opts": departure_opts,
            "title": f"Manifest: {manifest.tour_title}, {manifest.starts_local:%Y-%m-%d %H:%M}",
            "manifest": manifest,
            "csv_url": reverse("admin:bookings_departure_manifest_csv", args=[departure_id]),
            "pdf_url": reverse("admin:bookings_departure_manifest_pdf", args=[departure_id]),
            "departure_url": reverse("admin:inventory_departure_change", args=[departure_id])
            if request.user.has_perm("inventory.view_departure")
            else "",
            "can_view_bookings": request.user.has_perm("bookings.view_booking"),
        }
        response = TemplateResponse(request, "admin/bookings/manifest.html", context)
    response["Cache-Control"] = "private, no-store"
    return response
