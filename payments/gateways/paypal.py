"""PayPal (Orders v2, intent CAPTURE) through ``paypal-server-sdk``, one SDK client per gateway instance.

The payer approves an order at ``approve_url``; we then capture it. PayPal has no "void" for a CAPTURE order and
no vaulting here (installments are charged by Stripe), so ``cancel_payment`` only reports the order's state and
``charge_saved_method`` refuses. Webhooks are verified with PayPal's verify-webhook-signature API (the SDK has no
controller for it, so it is a plain ``requests`` call with the SDK's OAuth token and the same timeout).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import requests
from django.conf import settings
from paypalserversdk.configuration import Configuration, Environment, Server
from paypalserversdk.exceptions.api_exception import ApiException
from paypalserversdk.http.auth.o_auth_2 import ClientCredentialsAuthCredentials
from paypalserversdk.paypal_serversdk_client import PaypalServersdkClient

from core.currencies import minor_units
from payments.gateways.base import (
    CANCELLED,
    CREATED,
    FAILED,
    PENDING,
    REFUND_FAILED,
    REFUND_PENDING,
    REFUND_SUCCEEDED,
    SUCCEEDED,
    GatewayCredentialsRefused,
    GatewayDeclined,
    GatewayError,
    GatewayEvent,
    GatewayPayment,
    GatewayRefund,
    GatewayRejected,
    GatewayUnavailable,
    InvalidWebhook,
    PaymentGateway,
)

# https://developer.paypal.com/reference/currency-codes/ (REST API): everything else is refused by PayPal.
PAYPAL_CURRENCIES = frozenset(
    [
        "AUD",
        "BRL",
        "CAD",
        "CNY",
        "CZK",
        "DKK",
        "EUR",
        "HKD",
        "HUF",
        "ILS",
        "JPY",
        "MYR",
        "MXN",
        "TWD",
        "NZD",
        "NOK",
        "PHP",
        "PLN",
        "GBP",
        "SGD",
        "SEK",
        "CHF",
        "THB",
        "USD",
    ]
)
# PayPal takes these without decimals even where ISO 4217 has two (HUF, TWD): "1000", never "1000.00".
PAYPAL_NO_DECIMALS = frozenset({"JPY", "HUF", "TWD"})
DECLINE_ISSUES = frozenset(
    {"INSTRUMENT_DECLINED", "PAYER_ACTION_REQUIRED_INSTRUMENT_DECLINED", "CARD_DECLINED"}
)
PAYER_ACTION_STATUSES = frozenset({"CREATED", "SAVED", "PAYER_ACTION_REQUIRED"})
WEBHOOK_HEADERS = {
    "auth_algo": "PAYPAL-AUTH-ALGO",
    "cert_url": "PAYPAL-CERT-URL",
    "transmission_id": "PAYPAL-TRANSMISSION-ID",
    "transmission_sig": "PAYPAL-TRANSMISSION-SIG",
    "transmission_time": "PAYPAL-TRANSMISSION-TIME",
}


def paypal_decimals(currency: str) -> int:
    code = currency.upper()
    if code not in PAYPAL_CURRENCIES:
        raise GatewayRejected(f"PayPal does not accept the currency {code}.", code="currency_not_supported")
    return 0 if code in PAYPAL_NO_DECIMALS else 2


def to_paypal_value(amount: int, currency: str) -> str:
    """Our minor units as PayPal's decimal string; refuses (never rounds) what PayPal cannot express exactly."""
    code = currency.upper()
    decimals = paypal_decimals(code)
    value = Decimal(amount).scaleb(-minor_units(code))
    if value != value.quantize(Decimal(1).scaleb(-decimals)):
        raise GatewayRejected(
            f"PayPal takes {code} with {decimals} decimals; {value} {code} cannot be charged exactly.",
            code="amount_not_exact",
        )
    return str(value.quantize(Decimal(1).scaleb(-decimals)))


def from_paypal_value(value: str, currency: str) -> int:
    code = currency.upper()
    try:
        return int((Decimal(value).scaleb(minor_units(code))).to_integral_exact())
    except (InvalidOperation, ArithmeticError) as error:
        raise GatewayRejected(f"PayPal answered an unreadable amount {value!r} {code}.") from error


class _ApiBaseConfiguration(Configuration):
    """The SDK maps (environment, server) to PayPal's hosts; we also need the local fake or a proxy."""

    def __init__(self, *args, api_base: str = "", **kwargs):
        self._api_base = api_base.rstrip("/")
        super().__init__(*args, **kwargs)

    def get_base_uri(self, server=Server.DEFAULT):
        return self._api_base or super().get_base_uri(server)


def _json(text: str | None) -> dict:
    try:
        data = json.loads(text or "")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _issue(body: dict) -> str:
    details = body.get("details") or []
    if details and isinstance(details[0], dict):
        return str(details[0].get("issue") or "")
    return ""


def _api_error(error: ApiException, action: str) -> GatewayError:
    status = error.response_code
    body = _json(getattr(error.response, "text", ""))
    issue = _issue(body)
    description = ""
    if body.get("details"):
        description = str(body["details"][0].get("description") or "")
    reason = description or body.get("message") or body.get("error_description") or error.reason
    message = f"PayPal {action} failed (HTTP {status} {issue or body.get('name') or body.get('error', '')}): {reason}"
    if status >= 500 or status == 429:
        return GatewayUnavailable(message, code="paypal_unavailable")
    if issue in DECLINE_ISSUES:
        return GatewayDeclined(message, code=issue.lower())
    if status in (401, 403):
        return GatewayCredentialsRefused(
            message + " (check the client id, the secret and the app's permissions)",
            code="authentication_failed",
        )
    return GatewayRejected(message, code=(issue or body.get("name") or "paypal_rejected").lower())


def _first_capture(order: dict) -> dict:
    for unit in order.get("purchase_units") or []:
        captures = ((unit.get("payments") or {}).get("captures")) or []
        if captures:
            return captures[0]
    return {}


def _link(order: dict, *rels: str) -> str:
    for rel in rels:
        for link in order.get("links") or []:
            if link.get("rel") == rel:
                return str(link.get("href", ""))
    return ""


class PayPalGateway(PaymentGateway):
    provider: ClassVar[str] = "paypal"

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        webhook_id: str,
        live: bool = False,
        api_base: str | None = None,
        timeout: float | None = None,
    ):
        self.webhook_id = webhook_id
        self.timeout = float(settings.PAYMENT_GATEWAY_TIMEOUT if timeout is None else timeout)
        api_base = settings.PAYPAL_API_BASE if api_base is None else api_base
        environment = Environment.PRODUCTION if live else Environment.SANDBOX
        config = _ApiBaseConfiguration(
            api_base=api_base or "",
            timeout=self.timeout,
            max_retries=0,  # retries are ours (idempotency keys), never the SDK's behind our back
            environment=environment,
            client_credentials_auth_credentials=ClientCredentialsAuthCredentials(
                o_auth_client_id=client_id,
                o_auth_client_secret=client_secret,
                # Fetch the token ourselves so a refused or unreachable token endpoint raises its real error
                # (the SDK's default swallows it and reports "OAuthToken is undefined").
                o_auth_token_provider=lambda _last, auth_manager: auth_manager.fetch_token(),
            ),
        )
        self.base_uri = config.get_base_uri()
        self.client = PaypalServersdkClient(config=config)

    # --- plumbing ---------------------------------------------------------------------------------------------

    def _call(self, action: str, function, options: dict) -> dict:
        try:
            response = function(options)
        except ApiException as error:
            raise _api_error(error, action) from error
        except requests.Timeout as error:
            raise GatewayUnavailable(
                f"PayPal {action} timed out after {self.timeout:g} s.", code="paypal_timeout"
            ) from error
        except requests.RequestException as error:
            raise GatewayUnavailable(f"PayPal {action}: cannot reach {self.base_uri} ({error}).") from error
        return _json(response.text)

    def _access_token(self) -> str:
        auth = self.client.oauth_2
        try:
            if not auth.is_valid():
                raise GatewayCredentialsRefused(
                    "PayPal gave no access token for these credentials.", code="authentication_failed"
                )
        except ApiException as error:
            raise _api_error(error, "authentication") from error
        except requests.Timeout as error:
            raise GatewayUnavailable(f"PayPal authentication timed out after {self.timeout:g} s.") from error
        except requests.RequestException as error:
            raise GatewayUnavailable(
                f"PayPal authentication: cannot reach {self.base_uri} ({error})."
            ) from error
        # The SDK keeps the token it just validated here and has no public accessor for it.
        return auth._o_auth_token.access_token

    def _payment(self, order: dict) -> GatewayPayment:
        unit = (order.get("purchase_units") or [{}])[0]
        amount = unit.get("amount") or {}
        currency = str(amount.get("currency_code", "")).upper()
        total = from_paypal_value(amount.get("value", "0"), currency) if currency else 0
        capture = _first_capture(order)
        order_status = order.get("status", "")
        capture_status = capture.get("status", "")
        requires_action = False
        failure_code = failure_reason = ""
        received = 0
        if capture_status in ("COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"):
            status = SUCCEEDED
            received = from_paypal_value(capture["amount"]["value"], currency)
        elif capture_status in ("DECLINED", "FAILED"):
            status = FAILED
            failure_code = "capture_" + capture_status.lower()
            reason = (capture.get("status_details") or {}).get("reason", "")
            failure_reason = f"PayPal capture {capture_status.lower()}" + (f": {reason}" if reason else "")
        elif capture_status == "PENDING":
            status = PENDING  # e.g. an eCheck clearing: money not received yet, nothing for the payer to do
        elif order_status in PAYER_ACTION_STATUSES:
            status, requires_action = PENDING, True
        elif order_status == "APPROVED":
            status = PENDING  # approved by the payer: ours to capture
        elif order_status == "VOIDED":
            status = CANCELLED
        elif order_status == "COMPLETED":
            status = SUCCEEDED
        else:
            status = CREATED
        metadata = {key: str(unit[key]) for key in ("custom_id", "invoice_id") if unit.get(key)}
        payer = order.get("payer") or {}
        return GatewayPayment(
            reference=str(order.get("id", "")),
            status=status,
            amount=total,
            currency=currency,
            amount_received=received,
            approve_url=_link(order, "payer-action", "approve"),  # PayPal lists it only while approval is due
            requires_action=requires_action,
            capture_reference=str(capture.get("id", "")) if status == SUCCEEDED else "",
            payment_method_summary=f"PayPal {payer['email_address']}"
            if payer.get("email_address")
            else "PayPal",
            failure_code=failure_code,
            failure_reason=failure_reason,
            metadata=metadata,
        )

    def _refund(self, refund: dict, fallback_payment: str = "") -> GatewayRefund:
        amount = refund.get("amount") or {}
        currency = str(amount.get("currency_code", "")).upper()
        status = {"COMPLETED": REFUND_SUCCEEDED, "CANCELLED": REFUND_FAILED, "FAILED": REFUND_FAILED}.get(
            refund.get("status", ""), REFUND_PENDING
        )
        related = (refund.get("supplementary_data") or {}).get("related_ids") or {}
        reason = (refund.get("status_details") or {}).get("reason", "")
        return GatewayRefund(
            reference=str(refund.get("id", "")),
            status=status,
            amount=from_paypal_value(amount.get("value", "0"), currency) if currency else 0,
            currency=currency,
            payment_reference=str(related.get("order_id") or fallback_payment),
            # The capture: named in the related ids, or the refund's "up" link (…/captures/<id>).
            capture_reference=str(
                related.get("capture_id") or _link(refund, "up").rstrip("/").rsplit("/", 1)[-1]
            ),
            failure_reason=str(reason) if status == REFUND_FAILED else "",
            client_reference=str(refund.get("custom_id") or ""),
        )

    # --- the interface ----------------------------------------------------------------------------------------

    def supports_currency(self, currency: str) -> bool:
        return currency.upper() in PAYPAL_CURRENCIES

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
        code = currency.upper()
        unit: dict[str, Any] = {"amount": {"currency_code": code, "value": to_paypal_value(amount, code)}}
        if description:
            unit["description"] = description[:127]  # PayPal's limit
        # custom_id / invoice_id show in PayPal's dashboard and come back on captures and refunds.
        custom_id = metadata.get("payment_id") or metadata.get("custom_id") or ""
        invoice_id = metadata.get("invoice_id") or metadata.get("booking_reference") or ""
        if custom_id:
            unit["custom_id"] = str(custom_id)[:127]
        if invoice_id:
            unit["invoice_id"] = str(invoice_id)[:127]
        experience = {"user_action": "PAY_NOW", "shipping_preference": "NO_SHIPPING"}
        if return_url:
            experience["return_url"] = return_url
        if cancel_url:
            experience["cancel_url"] = cancel_url
        body = {
            "intent": "CAPTURE",
            "purchase_units": [unit],
            "payment_source": {"paypal": {"experience_context": experience}},
        }
        order = self._call(
            "create order",
            self.client.orders.create_order,
            {"body": body, "paypal_request_id": idempotency_key, "prefer": "return=representation"},
        )
        return self._payment(order)

    def charge_saved_method(self, **kwargs) -> GatewayPayment:
        raise GatewayRejected(
            "PayPal cannot charge a saved payment method here (no vaulting): installments are charged by Stripe.",
            code="not_supported",
        )

    def capture(self, reference: str, *, idempotency_key: str) -> GatewayPayment:
        """Capture an approved order. One captured already (by a concurrent request whose request id PayPal had
        not stored yet, or by an earlier attempt) is answered with its state: the capture that exists."""
        try:
            order = self._call(
                "capture order",
                self.client.orders.capture_order,
                {"id": reference, "paypal_request_id": idempotency_key, "prefer": "return=representation"},
            )
        except GatewayRejected as error:
            if error.code != "order_already_captured":
                raise
            return self.fetch_payment(reference)
        return self._payment(order)

    def fetch_payment(self, reference: str) -> GatewayPayment:
        return self._payment(self._call("get order", self.client.orders.get_order, {"id": reference}))

    def cancel_payment(self, reference: str) -> GatewayPayment:
        """PayPal has no void for a CAPTURE order: an unapproved order simply expires (after 3 hours), so we
        report its state and let it lapse; an approved one is never captured by us once replaced."""
        return self.fetch_payment(reference)

    def create_customer(
        self, *, email: str, name: str, idempotency_key: str, metadata: Mapping[str, str]
    ) -> str:
        return ""  # PayPal payers are identified by PayPal at approval; there is nothing to create

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
        if not capture_reference:
            raise GatewayRejected(
                f"PayPal refunds need the capture id of order {payment_reference}; it has none (not captured?).",
                code="missing_capture",
            )
        code = currency.upper()
        body: dict[str, Any] = {"amount": {"currency_code": code, "value": to_paypal_value(amount, code)}}
        if reason:
            body["note_to_payer"] = reason[:255]
        if client_reference:
            body["custom_id"] = client_reference[:127]
        refund = self._call(
            "refund capture",
            self.client.payments.refund_captured_payment,
            {
                "capture_id": capture_reference,
                "body": body,
                "paypal_request_id": idempotency_key,
                "prefer": "return=representation",
            },
        )
        return self._refund(refund, payment_reference)

    def fetch_refund(self, reference: str) -> GatewayRefund:
        return self._refund(
            self._call("get refund", self.client.payments.get_refund, {"refund_id": reference})
        )

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> GatewayEvent:
        lowered = {key.lower(): value for key, value in headers.items()}
        fields = {name: lowered.get(header.lower(), "") for name, header in WEBHOOK_HEADERS.items()}
        missing = [header for name, header in WEBHOOK_HEADERS.items() if not fields[name]]
        if missing:
            raise InvalidWebhook(f"PayPal webhook without {', '.join(missing)}.", code="missing_headers")
        if not self.webhook_id:
            raise InvalidWebhook("No PayPal webhook id is configured for this account.", code="no_webhook_id")
        try:
            event = json.loads(body)
        except ValueError as error:
            raise InvalidWebhook("PayPal webhook body is not JSON.", code="bad_body") from error
        if not isinstance(event, dict) or not event.get("id") or not event.get("event_type"):
            raise InvalidWebhook("PayPal webhook body is not an event.", code="bad_body")
        self._verify_signature(body, fields)
        return _event(event)

    def _verify_signature(self, body: bytes, fields: dict[str, str]) -> None:
        # The event is passed as the exact bytes received (PayPal's verification recomputes a CRC over them).
        head = json.dumps({**fields, "webhook_id": self.webhook_id})
        payload = head[:-1] + ', "webhook_event": ' + body.decode("utf-8", errors="replace") + "}"
        url = f"{self.base_uri}/v1/notifications/verify-webhook-signature"
        try:
            response = requests.post(
                url,
                data=payload.encode(),
                headers={
                    "Authorization": f"Bearer {self._access_token()}",
                    "Content-Type": "application/json",
                },
                timeout=self.timeout,
            )
        except requests.Timeout as error:
            raise GatewayUnavailable(
                f"PayPal webhook verification timed out after {self.timeout:g} s."
            ) from error
        except requests.RequestException as error:
            raise GatewayUnavailable(f"PayPal webhook verification: cannot reach {url} ({error}).") from error
        if response.status_code >= 500 or response.status_code == 429:
            raise GatewayUnavailable(f"PayPal webhook verification failed with HTTP {response.status_code}.")
        if response.status_code >= 400:
            raise InvalidWebhook(
                f"PayPal refused to verify the webhook (HTTP {response.status_code}: {response.text[:200]}).",
                code="verification_refused",
            )
        status = _json(response.text).get("verification_status")
        if status != "SUCCESS":
            raise InvalidWebhook(f"PayPal webhook signature did not verify ({status}).", code="bad_signature")


def _event(event: dict) -> GatewayEvent:
    event_type = str(event["event_type"])
    resource = event.get("resource") or {}
    related = (resource.get("supplementary_data") or {}).get("related_ids") or {}
    if event_type.startswith("CHECKOUT.ORDER."):
        return GatewayEvent(str(event["id"]), event_type, "payment", str(resource.get("id", "")))
    if event_type in ("PAYMENT.CAPTURE.REFUNDED", "PAYMENT.CAPTURE.REVERSED") and resource.get("id"):
        # The resource of a refund event is the refund itself (its related ids name the order and capture).
        return GatewayEvent(
            str(event["id"]), event_type, "refund", str(resource["id"]), str(related.get("order_id", ""))
        )
    if event_type.startswith("PAYMENT.CAPTURE."):
        order_id = str(related.get("order_id", ""))
        if order_id:
            return GatewayEvent(str(event["id"]), event_type, "payment", order_id)
    return GatewayEvent(str(event["id"]), event_type, "other")
