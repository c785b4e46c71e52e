"""Stripe behind ``PaymentGateway``: PaymentIntents confirmed in the browser by the Payment Element, saved cards
charged off-session for installments, refunds, and signed webhooks.

One ``stripe.StripeClient`` per gateway (each tenant has its own Stripe account and keys); the module-global
``stripe.api_key`` is never used. ``max_network_retries`` is safe because the SDK reuses our idempotency key.

Webhook kinds: ``payment_intent.*`` → "payment" (the PaymentIntent id); ``refund.*`` and ``charge.refund.updated``
→ "refund" (the refund id, with its PaymentIntent as ``payment_reference``); ``charge.refunded`` → "payment" with
the charge's PaymentIntent id (a charge may carry several refunds, so the service re-fetches the payment and its
refunds rather than guessing which refund the event is about); anything else → "other".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import stripe
from django.conf import settings

from core.currencies import minor_units
from payments.gateways.base import (
    CANCELLED,
    FAILED,
    PENDING,
    REFUND_FAILED,
    REFUND_PENDING,
    REFUND_SUCCEEDED,
    SUCCEEDED,
    GatewayCredentialsRefused,
    GatewayDeclined,
    GatewayEvent,
    GatewayPayment,
    GatewayRefund,
    GatewayRejected,
    GatewayUnavailable,
    InvalidWebhook,
    PaymentGateway,
)

T = TypeVar("T")

# How many decimals Stripe's API uses per currency where that differs from ISO 4217 (docs.stripe.com/currencies).
STRIPE_ZERO_DECIMAL = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
# Three-decimal currencies: Stripe takes thousandths but the last digit must be 0 (cards settle in hundredths).
STRIPE_THREE_DECIMAL = frozenset(["BHD", "JOD", "KWD", "OMR", "TND", "IQD", "LYD"])
# ISK is zero-decimal in ISO 4217, but Stripe wants it in hundredths (divisible by 100) for backwards compatibility.
STRIPE_TWO_DECIMAL_OVERRIDES = frozenset({"ISK"})

STRIPE_REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
CARD_BRANDS = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "discover": "Discover",
    "diners": "Diners Club",
    "jcb": "JCB",
    "unionpay": "UnionPay",
    "cartes_bancaires": "Cartes Bancaires",
    "eftpos_au": "eftpos",
}
PAYMENT_STATUSES = {
    "requires_confirmation": PENDING,
    "requires_action": PENDING,
    "processing": PENDING,
    "requires_capture": PENDING,
    "succeeded": SUCCEEDED,
    "canceled": CANCELLED,
}
REFUND_STATUSES = {
    "succeeded": REFUND_SUCCEEDED,
    "pending": REFUND_PENDING,
    "requires_action": REFUND_PENDING,
    "failed": REFUND_FAILED,
    "canceled": REFUND_FAILED,
}
# Expanded on every PaymentIntent read so one call gives the charge (for refunds) and the card (for the summary).
PAYMENT_INTENT_EXPAND = ["latest_charge", "payment_method"]


def stripe_decimals(currency: str) -> int:
    """Decimals of ``currency`` in Stripe's amounts; ValueError for currencies Stripe cannot charge."""
    code = currency.upper()
    iso = minor_units(code)  # ValueError for a code that is not ISO 4217
    if code in STRIPE_ZERO_DECIMAL:
        return 0
    if code in STRIPE_TWO_DECIMAL_OVERRIDES:
        return 2
    if iso > 3:
        raise ValueError(f"Stripe does not support {code} ({iso} decimals)")
    return iso


def to_stripe_amount(amount: int, currency: str) -> int:
    """Our minor units → Stripe's, refusing (never rounding) amounts Stripe cannot charge exactly."""
    code = currency.upper()
    try:
        ours, theirs = minor_units(code), stripe_decimals(code)
    except ValueError as error:
        raise GatewayRejected(str(error), code="currency_not_supported") from None
    if theirs >= ours:
        stripe_amount = amount * 10 ** (theirs - ours)
    else:
        factor = 10 ** (ours - theirs)
        if amount % factor:
            raise GatewayRejected(
                f"Stripe charges {code} in whole units of {theirs} decimals: {amount} minor units is not a "
                f"multiple of {factor}",
                code="amount_not_chargeable",
            )
        stripe_amount = amount // factor
    if code in STRIPE_THREE_DECIMAL and stripe_amount % 10:
        raise GatewayRejected(
            f"Stripe needs {code} amounts in multiples of 10 (its last decimal must be 0): {amount} is not",
            code="amount_not_chargeable",
        )
    return stripe_amount


def from_stripe_amount(stripe_amount: int, currency: str) -> int:
    code = currency.upper()
    ours, theirs = minor_units(code), stripe_decimals(code)
    if theirs >= ours:
        return stripe_amount // 10 ** (theirs - ours)
    return stripe_amount * 10 ** (ours - theirs)


def _field(obj: Any, name: str) -> Any:
    """Read ``name`` from a StripeObject, a plain dict (objects inside error bodies) or None."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _plain_dict(obj: Any) -> dict:
    if obj is None:
        return {}
    if hasattr(obj, "to_dict"):  # StripeObject is not a Mapping since stripe 15
        return obj.to_dict()
    return dict(obj)


def _id_of(obj: Any) -> str:
    """An id from an expandable field: the id string itself or the expanded object's ``id``."""
    if isinstance(obj, str):
        return obj
    return _field(obj, "id") or ""


def _failure_code(error: Any) -> str:
    """``card_declined`` carries the bank's reason in ``decline_code``; report that reason when it says more."""
    code = _field(error, "code") or ""
    decline_code = _field(error, "decline_code") or ""
    if code == "card_declined" and decline_code and decline_code not in ("generic_decline", "card_declined"):
        return decline_code
    return code or decline_code or "payment_failed"


def card_summary(payment_method: Any) -> str:
    card = _field(payment_method, "card")
    if not card:
        return ""
    brand = _field(card, "brand") or ""
    return f"{CARD_BRANDS.get(brand, brand.title() or 'Card')} •••• {_field(card, 'last4') or '????'}"


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return ""


@contextmanager
def translated_errors() -> Iterator[None]:
    """Stripe's exceptions → ours: outages (network, 5xx, 429) are GatewayUnavailable, declines GatewayDeclined,
    everything Stripe refused about the request GatewayRejected."""
    try:
        yield
    except stripe.CardError as error:
        raise GatewayDeclined(error.user_message or str(error), code=_failure_code(error.error)) from error
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as error:
        raise GatewayUnavailable(
            f"Stripe is unavailable: {error.user_message or error}", code="unavailable"
        ) from error
    except (stripe.AuthenticationError, stripe.PermissionError) as error:
        raise GatewayCredentialsRefused(
            f"Stripe refused our credentials: {error.user_message or error}", code="authentication"
        ) from error
    except stripe.StripeError as error:
        # 409: the same idempotency key is being processed by a concurrent request (a retried task racing
        # reconciliation): a moment later it answers with the first outcome, so this is "try again", not "refused".
        if (error.http_status or 0) >= 500 or error.http_status == 409:
            raise GatewayUnavailable(f"Stripe failed on its side: {error}", code="unavailable") from error
        code = error.code or type(error).__name__.removesuffix("Error").lower() or "rejected"
        raise GatewayRejected(
            f"Stripe refused the request: {error.user_message or error}", code=code
        ) from error


class StripeGateway(PaymentGateway):
    provider = "stripe"

    def __init__(
        self,
        secret_key: str,
        publishable_key: str,
        webhook_secret: str,
        *,
        api_base: str | None = None,
        timeout: float | None = None,
        max_network_retries: int = 1,
    ):
        if not secret_key.startswith(("sk_", "rk_")):
            raise ValueError("StripeGateway needs a secret (sk_…) or restricted (rk_…) key as secret_key")
        self.publishable_key = publishable_key
        self.webhook_secret = webhook_secret
        api_base = settings.STRIPE_API_BASE if api_base is None else api_base
        timeout = settings.PAYMENT_GATEWAY_TIMEOUT if timeout is None else timeout
        self.client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
            http_client=stripe.RequestsClient(timeout=timeout),
            max_network_retries=max_network_retries,
        )

    # --- Payments ------------------------------------------------------------------------------------------------

    def supports_currency(self, currency: str) -> bool:
        try:
            stripe_decimals(currency)
        except ValueError:
            return False
        return True

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
        return_url: str = "",  # the page passes it to stripe.confirmPayment; Stripe takes it only when confirming
        cancel_url: str = "",  # PayPal only
    ) -> GatewayPayment:
        params: dict[str, Any] = {
            "amount": to_stripe_amount(amount, currency),
            "currency": currency.lower(),
            "description": description,
            "metadata": dict(metadata),
            # Cards only: installments are charged off-session, which every card supports.
            "payment_method_types": ["card"],
            "expand": PAYMENT_INTENT_EXPAND,
        }
        if customer:
            params["customer"] = customer
        if save_payment_method:
            if not customer:
                raise GatewayRejected(
                    "Saving the card for later installments needs a Stripe customer (create_customer first)",
                    code="customer_required",
                )
            params["setup_future_usage"] = "off_session"
        intent = self._call(
            lambda: self.client.v1.payment_intents.create(params, {"idempotency_key": idempotency_key})
        )
        return self._payment(intent)

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
        params: dict[str, Any] = {
            "amount": to_stripe_amount(amount, currency),
            "currency": currency.lower(),
            "customer": customer,
            "payment_method": payment_method,
            "payment_method_types": ["card"],
            "off_session": True,
            "confirm": True,
            "description": description,
            "metadata": dict(metadata),
            "expand": PAYMENT_INTENT_EXPAND,
        }
        try:
            intent = self.client.v1.payment_intents.create(params, {"idempotency_key": idempotency_key})
        except stripe.CardError as error:
            # The payer is absent: a decline or a bank asking for 3-D Secure is an outcome to record (and to ask
            # the payer to pay on-session), not an exception.
            details = error.error
            return GatewayPayment(
                reference=_id_of(_field(details, "payment_intent")),
                status=FAILED,
                amount=amount,
                currency=currency.upper(),
                customer=customer,
                payment_method=payment_method,
                failure_code=_failure_code(details),
                failure_reason=error.user_message or str(error),
                metadata=dict(metadata),
            )
        except stripe.StripeError:
            with translated_errors():
                raise
        return self._payment(intent)

    def capture(self, reference: str, *, idempotency_key: str) -> GatewayPayment:
        # PaymentIntents capture automatically: there is nothing to take, only to report.
        return self.fetch_payment(reference)

    def fetch_payment(self, reference: str) -> GatewayPayment:
        intent = self._call(
            lambda: self.client.v1.payment_intents.retrieve(reference, {"expand": PAYMENT_INTENT_EXPAND})
        )
        return self._payment(intent)

    def cancel_payment(self, reference: str) -> GatewayPayment:
        current = self.fetch_payment(reference)
        if current.status in (SUCCEEDED, CANCELLED):
            return current  # nothing to abandon (a succeeded payment is refunded, never cancelled)
        intent = self._call(
            lambda: self.client.v1.payment_intents.cancel(
                reference, {"cancellation_reason": "abandoned", "expand": PAYMENT_INTENT_EXPAND}
            )
        )
        return self._payment(intent)

    def create_customer(
        self, *, email: str, name: str, idempotency_key: str, metadata: Mapping[str, str]
    ) -> str:
        customer = self._call(
            lambda: self.client.v1.customers.create(
                {"email": email, "name": name, "metadata": dict(metadata)},
                {"idempotency_key": idempotency_key},
            )
        )
        return customer.id

    # --- Refunds ---------------------------------------------------------------------------------------------

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
        params: dict[str, Any] = {"amount": to_stripe_amount(amount, currency)}
        if payment_reference:
            params["payment_intent"] = payment_reference
        elif capture_reference:
            params["charge"] = capture_reference
        else:
            raise GatewayRejected(
                "A Stripe refund needs the PaymentIntent or the charge id", code="missing_reference"
            )
        # Stripe takes only its three reasons; our free-text reason travels as metadata for the dashboard.
        metadata = {"refund": client_reference} if client_reference else {}
        if reason in STRIPE_REFUND_REASONS:
            params["reason"] = reason
        elif reason:
            metadata["reason"] = reason[:500]
        if metadata:
            params["metadata"] = metadata
        refund = self._call(
            lambda: self.client.v1.refunds.create(params, {"idempotency_key": idempotency_key})
        )
        return self._refund(refund, payment_reference)

    def fetch_refund(self, reference: str) -> GatewayRefund:
        return self._refund(self._call(lambda: self.client.v1.refunds.retrieve(reference)))

    # --- Webhooks --------------------------------------------------------------------------------------------

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> GatewayEvent:
        signature = _header(headers, "Stripe-Signature")
        if not signature:
            raise InvalidWebhook(
                "The Stripe webhook has no Stripe-Signature header", code="missing_signature"
            )
        try:
            stripe.WebhookSignature.verify_header(
                body, signature, self.webhook_secret, settings.STRIPE_WEBHOOK_TOLERANCE
            )
        except stripe.SignatureVerificationError as error:
            raise InvalidWebhook(
                f"Stripe webhook signature rejected: {error}", code="bad_signature"
            ) from None
        except (UnicodeDecodeError, ValueError) as error:
            raise InvalidWebhook(f"Stripe webhook body unreadable: {error}", code="bad_body") from None
        try:
            event = json.loads(body)
            event_id, event_type, obj = event["id"], event["type"], event["data"]["object"]
        except (ValueError, KeyError, TypeError) as error:
            raise InvalidWebhook(f"Stripe webhook body is not an event: {error!r}", code="bad_body") from None
        if not isinstance(event_id, str) or not isinstance(event_type, str) or not isinstance(obj, dict):
            raise InvalidWebhook("Stripe webhook body is not an event (id, type or object)", code="bad_body")
        return self._event(event_id, event_type, obj)

    @staticmethod
    def _event(event_id: str, event_type: str, obj: dict) -> GatewayEvent:
        if event_type.startswith("payment_intent."):
            return GatewayEvent(event_id, event_type, "payment", object_reference=obj.get("id", ""))
        if event_type.startswith("refund.") or event_type == "charge.refund.updated":
            return GatewayEvent(
                event_id,
                event_type,
                "refund",
                object_reference=obj.get("id", ""),
                payment_reference=_id_of(obj.get("payment_intent")),
            )
        if event_type == "charge.refunded" and obj.get("payment_intent"):
            intent = _id_of(obj.get("payment_intent"))
            return GatewayEvent(
                event_id, event_type, "payment", object_reference=intent, payment_reference=intent
            )
        return GatewayEvent(event_id, event_type, "other", object_reference=obj.get("id", ""))

    # --- Translation -----------------------------------------------------------------------------------------

    @staticmethod
    def _call(call: Callable[[], T]) -> T:
        with translated_errors():
            return call()

    @staticmethod
    def _payment(intent: Any) -> GatewayPayment:
        currency = intent.currency.upper()
        error = _field(intent, "last_payment_error")
        status = intent.status
        if status == "requires_payment_method":
            status = FAILED if error else PENDING
        else:
            status = PAYMENT_STATUSES.get(status, PENDING)
        payment_method = _field(intent, "payment_method")
        return GatewayPayment(
            reference=intent.id,
            status=status,
            amount=from_stripe_amount(intent.amount, currency),
            currency=currency,
            amount_received=from_stripe_amount(_field(intent, "amount_received") or 0, currency),
            client_secret=_field(intent, "client_secret") or "",
            requires_action=intent.status == "requires_action",
            capture_reference=_id_of(_field(intent, "latest_charge")) if status == SUCCEEDED else "",
            customer=_id_of(_field(intent, "customer")),
            payment_method=_id_of(payment_method),
            payment_method_summary=card_summary(payment_method)
            if not isinstance(payment_method, str)
            else "",
            failure_code=_failure_code(error) if status == FAILED else "",
            failure_reason=(_field(error, "message") or "") if status == FAILED else "",
            metadata=_plain_dict(_field(intent, "metadata")),
        )

    @staticmethod
    def _refund(refund: Any, payment_reference: str = "") -> GatewayRefund:
        currency = refund.currency.upper()
        return GatewayRefund(
            reference=refund.id,
            status=REFUND_STATUSES.get(refund.status, REFUND_PENDING),
            amount=from_stripe_amount(refund.amount, currency),
            currency=currency,
            payment_reference=_id_of(_field(refund, "payment_intent")) or payment_reference,
            capture_reference=_id_of(_field(refund, "charge")),
            failure_reason=_field(refund, "failure_reason") or "",
            client_reference=str(_field(_field(refund, "metadata"), "refund") or ""),
        )
