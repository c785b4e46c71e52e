"""The retail site: home, and the traveller's own booking pages ("find my booking", the manage page reached by
its signed link, documents, cancelling, traveller details). No account: the signed link is the key, so these
pages are never cached, indexed or leaked through the Referer header."""

from __future__ import annotations

import functools

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from bookings import services
from bookings.links import booking_for_manage_token, manage_token
from bookings.models import Booking
from bookings.selectors import find_booking
from core.downloads import private_download
from core.errors import ConflictError, DomainError
from core.http import client_ip
from payments.services.schedules import amount_due_now
from portals.retail import booking_page
from portals.retail.forms import FindBookingForm, TravellerForm
from portals.retail.throttle import LOOKUP_WINDOW_SECONDS, lookup_allowed

CANCEL_REASON = "Cancelled by the traveller online"


def home(request):
    return render(request, "retail/home.html")


def private_page(view):
    """Headers for pages whose URL is a secret: not stored by caches, not indexed, the URL not sent onwards."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response["Cache-Control"] = "private, no-store"
        # The URL never goes to another site; not "no-referrer", with which browsers send "Origin: null" on the
        # page's own forms and CSRF protection refuses them.
        response["Referrer-Policy"] = "same-origin"
        response["X-Robots-Tag"] = "noindex"
        return response

    return wrapper


def _booking(token: str) -> Booking:
    booking = booking_for_manage_token(token)
    if booking is None:
        raise Http404("No booking for this link.")
    return booking


def _manage_url(booking: Booking) -> str:
    return reverse("retail:manage_booking", kwargs={"token": manage_token(booking)})


def _render(request, template: str, booking: Booking, context: dict, status: int = 200) -> HttpResponse:
    response = render(
        request,
        template,
        {
            "booking": booking,
            "token": manage_token(booking),
            "status_label": booking_page.status_label(booking),
            **context,
        },
        status=status,
    )
    response["Content-Language"] = booking.language
    return response


@private_page
@require_http_methods(["GET", "POST"])
def find_booking_view(request):
    with translation.override(request.tenant.default_language or "en"):
        form = FindBookingForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            reference = form.cleaned_data["reference"]
            if not lookup_allowed(request.tenant.pk, client_ip(request), reference):
                response = render(
                    request,
                    "retail/too_many_attempts.html",
                    {"minutes": LOOKUP_WINDOW_SECONDS // 60},
                    status=429,
                )
                response["Retry-After"] = str(LOOKUP_WINDOW_SECONDS)
                return response
            booking = find_booking(reference, form.cleaned_data["email"])
            if booking is not None:
                return redirect(_manage_url(booking))
            # One message for a wrong reference and a wrong email: which one was right stays unknown.
            form.add_error(None, _("We found no booking with this reference and email address."))
        return render(request, "retail/find_booking.html", {"form": form}, status=400 if form.errors else 200)


@private_page
@require_safe
def manage_booking(request, token: str):
    booking = _booking(token)
    with translation.override(booking.language):
        return _render(
            request,
            "retail/manage_booking.html",
            booking,
            {
                "items": booking_page.items(booking),
                "travellers": _with_unit_labels(booking, booking_page.travellers(booking)),
                "documents": booking_page.documents(booking),
                "trade": booking_page.is_trade(booking),
                "cancel_open": booking_page.is_open(booking),
                "cancel_refusal": booking_page.cancellation_refusal(booking),
                "travellers_refusal": booking_page.travellers_refusal(booking),
                "payable": booking_page.payable_online(booking),
                "due_now": amount_due_now(booking),
            },
        )


def _with_unit_labels(booking: Booking, travellers: list) -> list[tuple]:
    labels = booking_page.unit_labels(booking)
    return [(traveller, labels.get(traveller.unit_code, traveller.unit_code)) for traveller in travellers]


@private_page
@require_safe
def download_document(request, token: str, document_id):
    booking = _booking(token)
    document = booking_page.document(booking, document_id)
    if document is None:
        raise Http404("No such document on this booking.")
    return private_download(document.content, document.filename, "application/pdf")


@private_page
@require_http_methods(["GET", "POST"])
def cancel_booking_view(request, token: str):
    booking = _booking(token)
    with translation.override(booking.language):
        refusal = booking_page.cancellation_refusal(booking)
        if request.method == "POST":
            if refusal is None:
                try:
                    services.cancel_booking(booking, reason=CANCEL_REASON)
                except DomainError as error:
                    refusal = error.message
                else:
                    messages.success(
                        request, _("Your booking is cancelled. We have sent you a confirmation.")
                    )
                    return redirect(_manage_url(booking))
            booking.refresh_from_db()
        return _render(
            request,
            "retail/cancel_booking.html",
            booking,
            {
                "refusal": refusal,
                "terms": services.cancellation_terms(booking) if refusal is None else None,
            },
            status=409 if request.method == "POST" else 200,
        )


@private_page
@require_http_methods(["GET", "POST"])
def travellers_view(request, token: str):
    booking = _booking(token)
    with translation.override(booking.language):
        refusal = booking_page.travellers_refusal(booking)
        named = booking_page.travellers(booking)
        labels = booking_page.unit_labels(booking)
        if refusal is not None:
            return _render(
                request,
                "retail/travellers.html",
                booking,
                {"refusal": refusal, "travellers": _with_unit_labels(booking, named)},
                status=409 if request.method == "POST" else 200,
            )
        data = request.POST if request.method == "POST" else None
        language = translation.get_language()
        named_forms = [
            TravellerForm(data, language=language, traveller=traveller, prefix=f"t-{traveller.pk}")
            for traveller in named
        ]
        open_forms = [
            TravellerForm(data, language=language, unit_code=slot.unit_code, prefix=f"new-{index}")
            for index, slot in enumerate(booking_page.open_slots(booking, named, labels))
        ]
        status = 200
        if data is not None:
            status = 400
            if all(
                [form.is_valid() for form in named_forms + open_forms]
            ):  # a list: every form shows its errors
                changes = {str(form.traveller.pk): form.changes() for form in named_forms}
                changes = {traveller_id: fields for traveller_id, fields in changes.items() if fields}
                added = [form.details() for form in open_forms if not form.is_blank]
                if not changes and not added:
                    messages.info(request, _("Nothing was changed."))
                    return redirect(_manage_url(booking))
                try:
                    services.update_travellers(booking, changes=changes, add=added)
                except DomainError as error:
                    status = 409 if isinstance(error, ConflictError) else 400
                    messages.error(request, error.message)
                    for problem in error.fields.get("travellers", []):
                        if problem != error.message:
                            messages.error(request, problem)
                else:
                    messages.success(request, _("The traveller details are saved. Thank you."))
                    return redirect(_manage_url(booking))
        forms = [(form, labels.get(form.unit_code, form.unit_code)) for form in named_forms + open_forms]
        return _render(
            request,
            "retail/travellers.html",
            booking,
            {"forms": forms, "cutoff": services.details_cutoff(booking)},
            status=status,
        )
