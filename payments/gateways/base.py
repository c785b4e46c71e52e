"""The one interface every payment gateway implements, and what it answers with.

Amounts are always ``int`` minor units of the ISO 4217 currency as ``core.currencies.minor_units`` counts them
(JPY 0 decimals, EUR 2, BHD 3); each gateway converts to and from the unit its API expects, and refuses (never
rounds) an amount it cannot charge exactly.

Statuses are ours (``payments.models.Payment.Status`` values) so services never read a gateway's vocabulary.

Errors: ``GatewayUnavailable`` means the gateway could not be reached or failed on its side (timeout, connection
refused, HTTP 5xx, 429): the circuit breaker counts these and checkout falls back to the other gateway.
``GatewayDeclined`` means the payer's bank or card refused: the gateway works, so it never triggers fallback.
``GatewayRejected`` means the gateway refused our request (4xx: bad currency, amount, credentials).
``InvalidWebhook`` means a webhook's signature, timestamp or body did not verify.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar


class GatewayError(Exception):
    """Base of every gateway failure; ``code`` is a short machine-readable reason (e.g. ``card_declined``)."""

    def __init__(self, message: str, *, code: str = "gateway_error"):
        super().__init__(message)
        self.message = message
        self.code = code


class GatewayUnavailable(GatewayError):
    """Timeout, connection error, HTTP 5xx or 429: the gateway is down for us right now."""


class GatewayDeclined(GatewayError):
    """The payer's card or account refused the payment (a decline is an answer, not an outage)."""


class GatewayRejected(GatewayError):
    """The gateway refused the request itself (HTTP 4xx other than a decline): our input or configuration."""


class GatewayCredentialsRefused(GatewayRejected):
    """Our account's credentials were refused (wrong, expired, revoked, or lacking a permission): nothing works
    until staff fix the account; what failed is worth doing again after that."""


class InvalidWebhook(GatewayError):
    """Bad or missing signature, a timestamp outside the tolerance window, or a body that is not an event."""


# Values of payments.models.Payment.Status (kept as strings here so gateways do not import models).
CREATED, PENDING, SUCCEEDED, FAILED, CANCELLED = "created", "pending", "succeeded", "failed", "cancelled"
# Values of payments.models.Refund.Status.
REFUND_PENDING, REFUND_SUCCEEDED, REFUND_FAILED = "pending", "succeeded", "failed"


@dataclass(frozen=True)
class GatewayPayment:
    """A payment as the gateway knows it right now (after create, confirm, capture or fetch)."""

    reference: str  # Stripe PaymentIntent id (pi_…), PayPal order id
    status: str  # CREATED / PENDING / SUCCEEDED / FAILED / CANCELLED
    amount: int  # minor units, converted back from the gateway's unit
    currency: str  # ISO code, upper case
    amount_received: int = 0
    client_secret: str = ""  # Stripe: handed to Stripe.js on the checkout page (never stored)
    approve_url: str = ""  # PayPal: where the payer approves the order
    requires_action: bool = False  # 3-D Secure or another step by the payer is pending
    capture_reference: str = ""  # what refunds are made against: Stripe charge (ch_…), PayPal capture id
    customer: str = ""  # Stripe customer (cus_…) the payment method is saved on
    payment_method: str = ""  # saved payment method (pm_…) usable off-session for later installments
    payment_method_summary: str = ""  # e.g. "Visa •••• 4242", shown to staff and the payer
    failure_code: str = ""  # e.g. card_declined, authentication_required, expired_card
    failure_reason: str = ""  # the gateway's human-readable reason
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GatewayRefund:
    reference: str  # Stripe re_…, PayPal refund id
    status: str  # REFUND_PENDING / REFUND_SUCCEEDED / REFUND_FAILED
    amount: int
    currency: str
    payment_reference: str = ""  # the PaymentIntent / PayPal order it belongs to, when the gateway says
    capture_reference: str = ""  # the Stripe charge / PayPal capture it returns money from
    failure_reason: str = ""
    # Our Refund's id, as we sent it (none: made at the gateway, e.g. in its dashboard).
    client_reference: str = ""


@dataclass(frozen=True)
class GatewayEvent:
    """A verified webhook. The event is only a trigger: services re-fetch ``object_reference`` before acting."""

    id: str  # the gateway's event id (stored uniquely: replays are ignored)
    type: str  # the gateway's event type, e.g. payment_intent.succeeded, PAYMENT.CAPTURE.COMPLETED
    object_kind: str  # "payment", "refund" or "other" (other types are acknowledged and ignored)
    object_reference: str = ""  # PaymentIntent id / PayPal order id for "payment"; refund id for "refund"
    payment_reference: str = ""  # for a refund: the payment it belongs to, when the event says


class PaymentGateway(ABC):
    """One tenant's account at one gateway. Every call is a network call: never call one inside a transaction
    that holds a row lock. Every call that creates something takes an ``idempotency_key`` derived from our ids,
    so a retried call after a timeout never charges or refunds twice."""

    provider: ClassVar[str]  # "stripe" / "paypal" (payments.models.Payment.Provider values)

    @abstractmethod
    def supports_currency(self, currency: str) -> bool:
        """Whether this gateway can charge ``currency`` at all (PayPal takes far fewer currencies)."""

    @abstractmethod
    def create_payment(
        self,
        *,
        amount: int,
        currency: str,
        idempotency_key: str,
        description: str,
        metadata: Mapping[str, str],
        customer: str = "",
        save_payment_method: bool = False,
        return_url: str = "",
        cancel_url: str = "",
    ) -> GatewayPayment:
        """Start a payment the payer completes in the browser: Stripe creates a PaymentIntent (the page confirms
        it with the Payment Element and its ``client_secret``; with ``customer`` and ``save_payment_method`` the
        card is kept for off-session installments); PayPal creates an order (the payer approves it at
        ``approve_url``, then returns to ``return_url``)."""

    @abstractmethod
    def charge_saved_method(
        self,
        *,
        amount: int,
        currency: str,
        customer: str,
        payment_method: str,
        idempotency_key: str,
        description: str,
        metadata: Mapping[str, str],
    ) -> GatewayPayment:
        """Charge a saved payment method with the payer absent (an installment). A decline or a bank asking for
        3-D Secure comes back as a FAILED payment with ``failure_code`` (``authentication_required`` for the
        latter), not as an exception; only outages and rejected requests raise."""

    @abstractmethod
    def capture(self, reference: str, *, idempotency_key: str) -> GatewayPayment:
        """Take the money of an approved payment (PayPal: capture the order). Stripe captures automatically:
        it returns the payment as fetched."""

    @abstractmethod
    def fetch_payment(self, reference: str) -> GatewayPayment:
        """The gateway's truth about a payment (webhooks and reconciliation act on this, never on the event)."""

    @abstractmethod
    def cancel_payment(self, reference: str) -> GatewayPayment:
        """Abandon a payment that has not succeeded (a newer attempt replaces it)."""

    @abstractmethod
    def create_customer(
        self, *, email: str, name: str, idempotency_key: str, metadata: Mapping[str, str]
    ) -> str:
        """A customer at the gateway to save payment methods on (Stripe); gateways without one return ""."""

    @abstractmethod
    def refund(
        self,
        *,
        payment_reference: str,
        capture_reference: str,
        amount: int,
        currency: str,
        idempotency_key: str,
        reason: str = "",
        client_reference: str = "",
    ) -> GatewayRefund:
        """Return ``amount`` (≤ what is left of that payment) to the payer. ``client_reference`` (our refund's
        id) is kept by the gateway and reported back, which tells our refunds from those made at the gateway."""

    @abstractmethod
    def fetch_refund(self, reference: str) -> GatewayRefund: ...

    @abstractmethod
    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> GatewayEvent:
        """Verify a webhook (Stripe: ``Stripe-Signature`` HMAC within the tolerance window; PayPal: the
        verify-webhook-signature API) and say what it is about. Raises ``InvalidWebhook``."""
