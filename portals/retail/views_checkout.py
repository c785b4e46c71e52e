"""The checkout pages: pay what is due on a booking (card through Stripe's Payment Element, or PayPal), then
follow the booking's status live until it is confirmed.

These views call gateways, so they run outside the request's transaction (``outside_request_transaction``) and
open a short tenant transaction for each database step themselves; the writes are ``payments.services.online``. The
booking is reached by its signed manage link, as the manage pages are (no account).
"""

from __future__ import annotations

import functools
import logging

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST, require_safe

from bookings.links import manage_token
from bookings.models import Booking
from core.errors import DomainError
from core.http import client_ip
from payments.gateways.base import GatewayError
from payments.models import Payment
from payments.services import online, schedules
from portals.retail import booking_page, checkout_page, throttle
from portals.retail.views import _booking, private_page
from tenants.context import require_tenant_id, tenant_context
from tenants.middleware import outside_request_transaction

logger = logging.getLogger(__name__)

Provider = Payment.Provider
CHOICES = ("due", "balance")


def _step():
    return tenant_context(require_tenant_id())


def _urls(request, booking: Booking) -> dict[str, str]:
    token = manage_token(booking)
    return {
        "manage": reverse("retail:manage_booking", kwargs={"token": token}),
        "checkout": reverse("retail:checkout", kwargs={"token": token}),
        "paypal": reverse("retail:checkout_paypal", kwargs={"token": token}),
        "paypal_return": request.build_absolute_uri(
            reverse("retail:checkout_paypal_return", kwargs={"token": token})
        ),
        "status": reverse("retail:booking_status", kwargs={"token": token}),
    }


def _done_url(booking: Booking, payment_id) -> str:
    return reverse("retail:checkout_done", kwargs={"token": manage_token(booking), "payment_id": payment_id})


def _page(request, booking: Booking, template: str, context: dict, status: int = 200) -> HttpResponse:
    response = render(
        request,
        template,
        {
            "booking": booking,
            "status_label": booking_page.status_label(booking),
            "urls": _urls(request, booking),
            **context,
        },
        status=status,
    )
    response["Content-Language"] = booking.language
    return response


def gateway_throttled(view):
    """Pages that call the tenant's gateway: at most ``PAYMENT_PAGE_LIMIT`` loads per address in the window."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not throttle.payment_page_allowed(request.tenant.pk, client_ip(request)):
            response = render(request, "retail/too_many_payment_attempts.html", status=429)
            response["Retry-After"] = str(throttle.PAYMENT_PAGE_WINDOW_SECONDS)
            return response
        return view(request, *args, **kwargs)

    return wrapper


def _choice(request) -> str:
    choice = request.POST.get("amount") or request.GET.get("amount") or "due"
    return choice if choice in CHOICES else "due"


@private_page
@gateway_throttled
@outside_request_transaction
@require_GET  # not HEAD: loading the page starts a payment attempt
def checkout(request, token: str):
    """The payment page. Card (Stripe) is offered first; PayPal when asked for (``?method=paypal``), when the
    tenant has no Stripe, or when Stripe is not answering (circuit open or just failed)."""
    with _step():
        booking = _booking(token)
    with translation.override(booking.language):
        return _checkout(request, booking, _choice(request))


def _checkout(request, booking: Booking, choice: str) -> HttpResponse:
    with _step():
        offer = checkout_page.offer(booking)
        if offer.due <= 0:
            messages.info(request, _("Nothing is due on this booking."))
            return redirect(_urls(request, booking)["manage"])
        providers = checkout_page.providers_for(booking)
        context = {
            "offer": offer,
            "choice": choice,
            "amount": offer.balance if choice == "balance" else offer.due,
            "schedule": checkout_page.schedule_lines(booking),
            "items": booking_page.items(booking),
            "providers": providers,
            "paypal_offered": Provider.PAYPAL in providers,
        }
    wanted = request.GET.get("method")
    notice = ""
    if Provider.STRIPE in providers and wanted != "paypal":
        try:
            attempt = online.start_checkout(booking, Provider.STRIPE, choice=choice)
        except online.CheckoutUnavailable as error:
            notice = error.message
        except DomainError as error:
            return _page(
                request, booking, "retail/checkout.html", {**context, "error": error.message}, status=409
            )
        else:
            response = _page(
                request,
                booking,
                "retail/checkout.html",
                {
                    **context,
                    "method": "card",
                    "attempt": attempt,
                    "stripe_js_url": settings.STRIPE_JS_URL,
                    "return_url": request.build_absolute_uri(_done_url(booking, attempt.payment_id)),
                },
            )
            response._csp_update = checkout_page.stripe_csp()
            return response
    if not providers:
        notice = _("Online payment is not available for this booking; please contact us to pay.")
    method = "paypal" if Provider.PAYPAL in providers else "none"
    response = _page(
        request, booking, "retail/checkout.html", {**context, "method": method, "notice": notice}
    )
    if method == "paypal":
        response._csp_update = checkout_page.paypal_csp()
    return response


@private_page
@gateway_throttled
@outside_request_transaction
@require_POST
def start_paypal(request, token: str):
    """Create a PayPal order for the chosen amount and send the payer to PayPal to approve it."""
    with _step():
        booking = _booking(token)
        urls = _urls(request, booking)
    try:
        attempt = online.start_checkout(
            booking,
            Provider.PAYPAL,
            choice=_choice(request),
            return_url=urls["paypal_return"],
            cancel_url=request.build_absolute_uri(urls["checkout"] + "?method=paypal"),
        )
    except DomainError as error:
        messages.error(request, error.message)
        return redirect(urls["checkout"] + "?method=paypal")
    if not checkout_page.is_paypal_url(attempt.approve_url):
        logger.error("PayPal answered with an approval link outside PayPal: %s", attempt.approve_url)
        messages.error(request, online.NOT_STARTED)
        return redirect(urls["checkout"] + "?method=paypal")
    return HttpResponseRedirect(attempt.approve_url, status=303)


@private_page
@gateway_throttled
@outside_request_transaction
@require_safe
def paypal_return(request, token: str):
    """Back from PayPal with the approved order: capture it (once, however often this page is loaded)."""
    with _step():
        booking = _booking(token)
        payment = Payment.objects.filter(
            booking=booking, provider=Provider.PAYPAL, provider_reference=request.GET.get("token", "")
        ).first()
    if payment is None:
        raise Http404("No PayPal payment of this booking has this token.")
    try:
        online.capture_approved(payment)
    except GatewayError as error:
        # Not lost: the order stays approved; the webhook or reconciliation captures it.
        logger.warning("PayPal capture of %s deferred: %s", payment.pk, error.message)
    return HttpResponseRedirect(_done_url(booking, payment.pk), status=303)


@private_page
@gateway_throttled
@outside_request_transaction
@require_safe
def payment_done(request, token: str, payment_id):
    """After "Pay": the payment's outcome, and the booking's status followed live until it is confirmed."""
    with _step():
        booking = _booking(token)
        payment = online.attempt_for_page(booking, payment_id)
        if payment is None:
            raise Http404("No such payment on this booking.")
    if not payment.is_settled:
        try:  # ask the gateway now rather than wait for its webhook
            payment = online.sync_payment(payment)
        except GatewayError as error:
            logger.info("payment %s not synced on the confirmation page: %s", payment.pk, error.message)
    with _step(), translation.override(booking.language):
        booking = Booking.objects.get(pk=booking.pk)
        return _page(
            request,
            booking,
            "retail/checkout_done.html",
            {
                "payment": payment,
                "payment_label": checkout_page.PAYMENT_STATUS_LABELS[payment.status],
                "due_now": schedules.amount_due_now(booking),
            },
        )


@private_page
@require_safe
def booking_status(request, token: str):
    """The booking's status as JSON, polled by the confirmation page (cheap: no gateway call)."""
    booking = _booking(token)
    payment = online.attempt_for_page(booking, request.GET.get("payment"))
    amounts = (
        {}  # an agency's booking: its price is the agency's, not for the traveller
        if booking_page.is_trade(booking)
        else {"paid": booking.paid, "balance": booking.balance, "due_now": schedules.amount_due_now(booking)}
    )
    with translation.override(booking.language):
        return JsonResponse(
            {
                "reference": booking.reference,
                "status": booking.status,
                "status_label": booking_page.status_label(booking),
                "confirmed": booking.status == Booking.Status.CONFIRMED,
                **amounts,
                "payment": (
                    {
                        "status": payment.status,
                        "label": str(checkout_page.PAYMENT_STATUS_LABELS[payment.status]),
                        "failure": payment.failure_reason,
                    }
                    if payment is not None
                    else None
                ),
            }
        )
