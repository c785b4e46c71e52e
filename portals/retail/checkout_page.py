"""What the checkout pages show, read from the booking (writes are ``payments.services.online``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext_lazy

from bookings.models import Booking
from payments.gateways import tenant_accounts
from payments.models import Installment, Payment
from payments.services import online, schedules

InstallmentKind = Installment.Kind
KIND_LABELS = {
    InstallmentKind.FULL: gettext_lazy("Full payment"),
    InstallmentKind.DEPOSIT: gettext_lazy("Deposit"),
    InstallmentKind.BALANCE: gettext_lazy("Balance"),
    InstallmentKind.INSTALLMENT: gettext_lazy("Installment"),
}
PAYMENT_STATUS_LABELS = {
    Payment.Status.CREATED: gettext_lazy("Starting"),
    Payment.Status.PENDING: gettext_lazy("Waiting for the payment"),
    Payment.Status.SUCCEEDED: gettext_lazy("Payment received"),
    Payment.Status.FAILED: gettext_lazy("Payment failed"),
    Payment.Status.CANCELLED: gettext_lazy("Payment cancelled"),
}


@dataclass(frozen=True)
class ScheduleLine:
    label: str
    due_on: dt.date
    amount: int
    paid: bool
    due_now: bool


@dataclass(frozen=True)
class Offer:
    """What the payer can choose to pay on the page."""

    due: int  # the amount a "Pay" pays by default
    balance: int  # paying everything still owed
    due_is_early: bool  # nothing is due yet: "due" is the next installment, paid early


def schedule_lines(booking: Booking) -> list[ScheduleLine]:
    lines = []
    states = schedules.installment_states(booking)
    count = sum(1 for state in states if state.installment.kind == InstallmentKind.INSTALLMENT)
    for state in states:
        label = str(KIND_LABELS.get(state.installment.kind, state.installment.kind))
        if state.installment.kind == InstallmentKind.INSTALLMENT:
            label = f"{label} {state.installment.sequence}/{count}"
        lines.append(
            ScheduleLine(
                label,
                state.installment.due_on,
                state.installment.amount,
                state.paid,
                state.due and not state.paid,
            )
        )
    return lines


def offer(booking: Booking) -> Offer:
    due_now = schedules.amount_due_now(booking)
    return Offer(
        due=online.checkout_amount(booking, "due"),
        balance=online.checkout_amount(booking, "balance"),
        due_is_early=due_now == 0,
    )


def providers_for(booking: Booking) -> list[str]:
    """The tenant's gateways that take this booking's currency, Stripe first."""
    result = []
    for provider in tenant_accounts.configured_providers():
        if tenant_accounts.gateway_for(provider).supports_currency(booking.currency):
            result.append(provider)
    return result


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def stripe_csp() -> dict[str, list[str]]:
    """Stripe.js and what it talks to, added to this page's Content-Security-Policy only (the gateways' origins
    as Stripe documents them; the local fake's in dev and tests)."""
    script = _origin(settings.STRIPE_JS_URL)
    api = _origin(settings.STRIPE_API_BASE) if settings.STRIPE_API_BASE else "https://api.stripe.com"
    frames = [script, "https://hooks.stripe.com"] if script == "https://js.stripe.com" else [script]
    return {"script-src": [script], "frame-src": frames, "connect-src": [api, script]}


def is_paypal_url(url: str) -> bool:
    """An approval link we may send a payer to: PayPal's own site, or the configured local fake in dev."""
    host = urlsplit(url).hostname or ""
    if settings.PAYPAL_API_BASE and url.startswith(_origin(settings.PAYPAL_API_BASE) + "/"):
        return True
    return urlsplit(url).scheme == "https" and (host == "paypal.com" or host.endswith(".paypal.com"))


def paypal_csp() -> dict[str, list[str]]:
    """The PayPal form posts to us and we redirect to PayPal's approval page: browsers check that redirect
    against the page's ``form-action``, so PayPal's origin is allowed there (only on this page)."""
    if settings.PAYPAL_API_BASE:
        return {"form-action": [_origin(settings.PAYPAL_API_BASE)]}
    return {"form-action": ["https://www.paypal.com", "https://www.sandbox.paypal.com"]}
