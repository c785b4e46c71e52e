"""A local, in-memory stand-in for PayPal's REST API (there is no internet here): OAuth, Orders v2, captures,
refunds, webhooks with their verification API, an approval page, and controls for outages.

Run: ``python -m tourops.fakes.paypal --port 8421``. Paths, JSON shapes, status codes and error bodies follow the
real API closely enough for ``paypal-server-sdk`` and our gateway to behave as against PayPal.

Controls (not PayPal's; under ``/_fake/``):
- ``POST /_fake/outage`` ``{"mode": "up" | "down" | "slow", "seconds": n}``: down = every API call answers 503,
  slow = every API call waits ``seconds`` first;
- ``POST /_fake/orders/{id}/approve`` ``{"decline": false}``: what the payer does on the approval page;
- ``POST /_fake/webhooks`` ``{"url": ..., "webhook_id": ..., "client_id": optional}``: where events are delivered
  (signed for that webhook id; with ``client_id`` only the events of that client's orders, as PayPal does per app);
- ``POST /_fake/webhooks/sign`` ``{"body": ..., "webhook_id": ...}``: the transmission headers for a body (tests);

Webhook signatures are the fake's own: HMAC-SHA256 (fixed key) over ``transmission_id|time|webhook_id|crc32(body)``
— the same fields PayPal signs — checked by ``POST /v1/notifications/verify-webhook-signature`` as PayPal does.
Events sent: CHECKOUT.ORDER.APPROVED, PAYMENT.CAPTURE.COMPLETED, PAYMENT.CAPTURE.REFUNDED. A funding source declined at
capture answers 422 INSTRUMENT_DECLINED with a "redirect" link back to approval and creates no capture (as PayPal),
so there is no PAYMENT.CAPTURE.DENIED to send.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import html
import json
import secrets
import zlib
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
from aiohttp import web

from tourops.fakes.control import new_outage, outage_control

SUPPORTED_CURRENCIES = frozenset(
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
NO_DECIMAL_CURRENCIES = frozenset({"JPY", "HUF", "TWD"})
SIGNING_KEY = b"tourops-fake-paypal-webhook-signing-key"
CERT_PATH = "/_fake/certs/webhook-signing.pem"
WEBHOOK_DELAY_SECONDS = 0.2

OUTAGE = new_outage()
TOKENS: dict[str, str] = {}  # access token → client id
ORDERS: dict[str, dict] = {}
CAPTURES: dict[str, dict] = {}
REFUNDS: dict[str, dict] = {}
ORDER_RETURN: dict[str, dict] = {}  # order id → {"return_url", "cancel_url", "decline"}
IDEMPOTENT: dict[tuple[str, str, str], tuple[int, bytes]] = {}  # (client, path, request id) → answer
WEBHOOKS: list[dict] = []  # {"url", "webhook_id"}
BACKGROUND: set[asyncio.Task] = set()


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id(length: int = 17) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


class PayPalError(Exception):
    def __init__(self, status: int, name: str, message: str, issue: str = "", description: str = ""):
        super().__init__(message)
        self.status = status
        self.name = name
        self.message = message
        self.issue = issue
        self.description = description
        self.extra_links: list[dict] = []  # e.g. rel "redirect" back to the approval page after a decline

    def response(self) -> web.Response:
        body: dict = {"name": self.name, "message": self.message, "debug_id": new_id(13).lower()}
        if self.issue:
            body["details"] = [{"issue": self.issue, "description": self.description or self.message}]
        body["links"] = self.extra_links + [
            {
                "href": f"https://developer.paypal.com/docs/api/orders/v2/#error-{self.issue or self.name}",
                "rel": "information_link",
                "method": "GET",
            }
        ]
        return web.json_response(body, status=self.status)


def unprocessable(issue: str, description: str) -> PayPalError:
    return PayPalError(
        422,
        "UNPROCESSABLE_ENTITY",
        "The requested action could not be performed, semantically incorrect, or failed business validation.",
        issue,
        description,
    )


def invalid_request(issue: str, description: str) -> PayPalError:
    return PayPalError(
        400,
        "INVALID_REQUEST",
        "Request is not well-formed, syntactically incorrect, or violates schema.",
        issue,
        description,
    )


def not_found(what: str, ident: str) -> PayPalError:
    return PayPalError(
        404,
        "RESOURCE_NOT_FOUND",
        "The specified resource does not exist.",
        "INVALID_RESOURCE_ID",
        f"No {what} with id {ident!r}.",
    )


# --- amounts -------------------------------------------------------------------------------------------------


def parse_amount(amount: object) -> tuple[str, Decimal]:
    """Validate ``{"currency_code", "value"}`` as PayPal does; returns (currency, value)."""
    if not isinstance(amount, dict):
        raise invalid_request("MISSING_REQUIRED_PARAMETER", "amount is required.")
    currency = amount.get("currency_code")
    value = amount.get("value")
    if not isinstance(currency, str) or not isinstance(value, str):
        raise invalid_request(
            "MISSING_REQUIRED_PARAMETER", "amount.currency_code and amount.value are required."
        )
    if currency not in SUPPORTED_CURRENCIES:
        raise unprocessable("CURRENCY_NOT_SUPPORTED", f"Currency code {currency} is not currently supported.")
    try:
        decimal = Decimal(value)
    except InvalidOperation:
        raise invalid_request(
            "INVALID_PARAMETER_SYNTAX", f"amount.value {value!r} is not a number."
        ) from None
    decimals = len(value.split(".")[1]) if "." in value else 0
    expected = 0 if currency in NO_DECIMAL_CURRENCIES else 2
    if decimals > expected:
        raise unprocessable(
            "DECIMAL_PRECISION",
            f"If the currency supports decimals, only two decimal place precision is supported "
            f"({currency} takes {expected} decimals; got {value!r}).",
        )
    if decimal <= 0:
        raise unprocessable("AMOUNT_MUST_BE_POSITIVE", "amount.value must be greater than zero.")
    return currency, decimal


def format_amount(currency: str, value: Decimal) -> str:
    return str(value.quantize(Decimal(1) if currency in NO_DECIMAL_CURRENCIES else Decimal("0.01")))


# --- middleware ----------------------------------------------------------------------------------------------


def is_api(path: str) -> bool:
    return path.startswith(("/v1/", "/v2/"))


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except PayPalError as error:
        return error.response()


@web.middleware
async def outage_middleware(request: web.Request, handler):
    if is_api(request.path):
        if OUTAGE["mode"] == "down":
            return PayPalError(
                503, "SERVICE_UNAVAILABLE", "Service Unavailable (fake PayPal set to down)."
            ).response()
        if OUTAGE["mode"] == "slow":
            await asyncio.sleep(OUTAGE["seconds"])
    return await handler(request)


@web.middleware
async def auth_middleware(request: web.Request, handler):
    if is_api(request.path) and request.path != "/v1/oauth2/token":
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        if token not in TOKENS:
            return web.json_response(
                {"error": "invalid_token", "error_description": "Token signature verification failed"},
                status=401,
            )
        request["client_id"] = TOKENS[token]
    return await handler(request)


@web.middleware
async def idempotency_middleware(request: web.Request, handler):
    """``PayPal-Request-Id`` on a POST: the same request again answers the first answer."""
    request_id = request.headers.get("PayPal-Request-Id")
    if request.method != "POST" or not request_id or not request.path.startswith("/v2/"):
        return await handler(request)
    slot = (request.get("client_id", ""), request.path, request_id)
    if slot in IDEMPOTENT:
        status, body = IDEMPOTENT[slot]
        return web.Response(status=status, body=body, content_type="application/json")
    try:
        response = await handler(request)
    except PayPalError as error:
        response = error.response()
    if response.status < 500:
        IDEMPOTENT[slot] = (response.status, response.body)
    return response


async def read_json(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise invalid_request("MALFORMED_REQUEST_JSON", "The request JSON is not well formed.") from None
    if not isinstance(data, dict):
        raise invalid_request("MALFORMED_REQUEST_JSON", "The request body must be a JSON object.")
    return data


# --- OAuth ---------------------------------------------------------------------------------------------------


async def oauth_token(request: web.Request) -> web.Response:
    header = request.headers.get("Authorization", "")
    client_id = secret = ""
    if header.startswith("Basic "):
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
    if not client_id or not secret:
        return web.json_response(
            {"error": "invalid_client", "error_description": "Client Authentication failed"}, status=401
        )
    form = await request.post()
    if form.get("grant_type") != "client_credentials":
        return web.json_response(
            {"error": "unsupported_grant_type", "error_description": "Grant Type is NULL or not supported"},
            status=400,
        )
    token = "A21AA" + secrets.token_urlsafe(40)
    TOKENS[token] = client_id
    return web.json_response(
        {
            "scope": "https://uri.paypal.com/services/payments/payment https://uri.paypal.com/services/payments/refund",
            "access_token": token,
            "token_type": "Bearer",
            "app_id": "APP-80W284485P519543T",
            "expires_in": 32400,
            "nonce": f"{now()}{secrets.token_hex(8)}",
        }
    )


# --- orders --------------------------------------------------------------------------------------------------


def base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def order_links(request: web.Request, order: dict) -> list[dict]:
    href = f"{base_url(request)}/v2/checkout/orders/{order['id']}"
    links = [{"href": href, "rel": "self", "method": "GET"}]
    if order["status"] in ("CREATED", "PAYER_ACTION_REQUIRED"):
        approve = f"{base_url(request)}/checkoutnow?token={order['id']}"
        links.append({"href": approve, "rel": "payer-action", "method": "GET"})
        links.append({"href": approve, "rel": "approve", "method": "GET"})
    if order["status"] == "APPROVED":
        links.append({"href": f"{href}/capture", "rel": "capture", "method": "POST"})
    return links


def order_json(request: web.Request, order: dict) -> dict:
    return {**order, "links": order_links(request, order)}


def owned(request: web.Request, table: dict, ident: str, what: str) -> dict:
    item = table.get(ident)
    if item is None or item["_client"] != request.get("client_id"):
        raise not_found(what, ident)
    return item


def public(item: dict) -> dict:
    return {key: value for key, value in item.items() if not key.startswith("_")}


async def create_order(request: web.Request) -> web.Response:
    data = await read_json(request)
    if data.get("intent") != "CAPTURE":
        raise invalid_request("INVALID_PARAMETER_VALUE", "intent must be CAPTURE (AUTHORIZE is not faked).")
    units = data.get("purchase_units")
    if not isinstance(units, list) or len(units) != 1 or not isinstance(units[0], dict):
        raise invalid_request("INVALID_ARRAY_LENGTH", "purchase_units must hold exactly one unit here.")
    unit = units[0]
    currency, value = parse_amount(unit.get("amount"))
    context = dict(data.get("application_context") or {})
    paypal_source = (data.get("payment_source") or {}).get("paypal") or {}
    context.update(paypal_source.get("experience_context") or {})
    order_id = new_id()
    stored_unit = {
        "reference_id": unit.get("reference_id", "default"),
        "amount": {"currency_code": currency, "value": format_amount(currency, value)},
        "payee": {"email_address": "merchant@example.com", "merchant_id": "FAKEMERCHANT01"},
    }
    for optional in ("custom_id", "invoice_id", "description", "soft_descriptor"):
        if unit.get(optional):
            stored_unit[optional] = unit[optional]
    order = {
        "id": order_id,
        "intent": "CAPTURE",
        "status": "PAYER_ACTION_REQUIRED" if paypal_source else "CREATED",
        "purchase_units": [stored_unit],
        "create_time": now(),
        "_client": request["client_id"],
    }
    ORDERS[order_id] = order
    ORDER_RETURN[order_id] = {
        "return_url": context.get("return_url", ""),
        "cancel_url": context.get("cancel_url", ""),
        "decline": False,
    }
    return web.json_response(order_json(request, public(order)), status=201)


async def get_order(request: web.Request) -> web.Response:
    order = owned(request, ORDERS, request.match_info["id"], "order")
    return web.json_response(order_json(request, public(order)))


def approve_order(order: dict, decline: bool) -> str:
    """The payer approves (their funding source failing at capture when ``decline``); returns the payer id."""
    if (
        order["status"] == "APPROVED"
    ):  # back after INSTRUMENT_DECLINED: the payer picks a funding source again
        ORDER_RETURN[order["id"]]["decline"] = decline
        return order["payer"]["payer_id"]
    if order["status"] not in ("CREATED", "PAYER_ACTION_REQUIRED"):
        raise unprocessable("ORDER_NOT_APPROVABLE", f"The order is {order['status']} and cannot be approved.")
    payer_id = new_id(13)
    order["status"] = "APPROVED"
    order["payer"] = {
        "name": {"given_name": "Test", "surname": "Buyer"},
        "email_address": "buyer@example.com",
        "payer_id": payer_id,
        "address": {"country_code": "NO"},
    }
    order["payment_source"] = {"paypal": {"email_address": "buyer@example.com", "account_id": payer_id}}
    order["update_time"] = now()
    ORDER_RETURN[order["id"]]["decline"] = decline
    emit("CHECKOUT.ORDER.APPROVED", "checkout-order", {**public(order)}, order["_client"])
    return payer_id


async def capture_order(request: web.Request) -> web.Response:
    order = owned(request, ORDERS, request.match_info["id"], "order")
    if order["status"] == "COMPLETED":
        raise unprocessable(
            "ORDER_ALREADY_CAPTURED",
            "Order already captured. If 'intent=CAPTURE' only one capture per order is allowed.",
        )
    if order["status"] != "APPROVED":
        raise unprocessable(
            "ORDER_NOT_APPROVED",
            "Payer has not yet approved the Order for payment. Redirect the payer to the 'rel':'approve' URL.",
        )
    unit = order["purchase_units"][0]
    if ORDER_RETURN[order["id"]]["decline"]:
        declined = unprocessable(
            "INSTRUMENT_DECLINED",
            "The instrument presented was either declined by the processor or bank, or it can't be used for this "
            "payment.",
        )
        # As PayPal: send the payer back to approve with another funding source.
        approve = f"{base_url(request)}/checkoutnow?token={order['id']}"
        declined.extra_links = [{"href": approve, "rel": "redirect", "method": "GET"}]
        raise declined
    capture_id = new_id()
    amount = unit["amount"]
    fee = (Decimal(amount["value"]) * Decimal("0.034")).quantize(
        Decimal(1) if amount["currency_code"] in NO_DECIMAL_CURRENCIES else Decimal("0.01")
    )
    capture = {
        "id": capture_id,
        "status": "COMPLETED",
        "amount": dict(amount),
        "final_capture": True,
        "seller_protection": {"status": "ELIGIBLE"},
        "seller_receivable_breakdown": {
            "gross_amount": dict(amount),
            "paypal_fee": {"currency_code": amount["currency_code"], "value": str(fee)},
            "net_amount": {
                "currency_code": amount["currency_code"],
                "value": str(Decimal(amount["value"]) - fee),
            },
        },
        "supplementary_data": {"related_ids": {"order_id": order["id"]}},
        "create_time": now(),
        "update_time": now(),
        "_client": order["_client"],
        "_refunded": "0",
    }
    for copied in ("custom_id", "invoice_id"):
        if copied in unit:
            capture[copied] = unit[copied]
    CAPTURES[capture_id] = capture
    unit["payments"] = {"captures": [public(capture)]}
    order["status"] = "COMPLETED"
    order["update_time"] = now()
    emit("PAYMENT.CAPTURE.COMPLETED", "capture", public(capture), order["_client"])
    return web.json_response(order_json(request, public(order)), status=201)


def refresh_order_capture(capture: dict) -> None:
    order = ORDERS[capture["supplementary_data"]["related_ids"]["order_id"]]
    order["purchase_units"][0]["payments"] = {"captures": [public(capture)]}


# --- captures and refunds ------------------------------------------------------------------------------------


async def get_capture(request: web.Request) -> web.Response:
    return web.json_response(public(owned(request, CAPTURES, request.match_info["id"], "capture")))


async def refund_capture(request: web.Request) -> web.Response:
    capture = owned(request, CAPTURES, request.match_info["id"], "capture")
    data = await read_json(request)
    currency = capture["amount"]["currency_code"]
    remaining = Decimal(capture["amount"]["value"]) - Decimal(capture["_refunded"])
    if capture["status"] not in ("COMPLETED", "PARTIALLY_REFUNDED") or remaining <= 0:
        raise unprocessable("CAPTURE_FULLY_REFUNDED", "The capture has already been fully refunded.")
    if data.get("amount") is None:
        value = remaining
    else:
        refund_currency, value = parse_amount(data["amount"])
        if refund_currency != currency:
            raise unprocessable(
                "REFUND_CURRENCY_MISMATCH", f"Refund must be in the capture's currency {currency}."
            )
    if value > remaining:
        raise unprocessable(
            "REFUND_AMOUNT_EXCEEDED",
            f"The refund amount must be less than or equal to the capture amount that has not yet been refunded "
            f"({format_amount(currency, remaining)} {currency}).",
        )
    refunded = Decimal(capture["_refunded"]) + value
    capture["_refunded"] = str(refunded)
    capture["status"] = (
        "REFUNDED" if refunded == Decimal(capture["amount"]["value"]) else "PARTIALLY_REFUNDED"
    )
    capture["update_time"] = now()
    refresh_order_capture(capture)
    refund_id = new_id()
    # As at PayPal, a refund names its capture only through its "up" link (no related ids).
    refund = {
        "id": refund_id,
        "status": "COMPLETED",
        "amount": {"currency_code": currency, "value": format_amount(currency, value)},
        "note_to_payer": data.get("note_to_payer", ""),
        "create_time": now(),
        "update_time": now(),
        "links": [
            {"href": f"{base_url(request)}/v2/payments/refunds/{refund_id}", "rel": "self", "method": "GET"},
            {
                "href": f"{base_url(request)}/v2/payments/captures/{capture['id']}",
                "rel": "up",
                "method": "GET",
            },
        ],
        "_client": capture["_client"],
    }
    for copied in ("custom_id", "invoice_id"):
        if data.get(copied):  # the caller's own reference for this refund
            refund[copied] = str(data[copied])[:127]
        elif copied in capture:
            refund[copied] = capture[copied]
    REFUNDS[refund_id] = refund
    emit("PAYMENT.CAPTURE.REFUNDED", "refund", public(refund), capture["_client"])
    return web.json_response(public(refund), status=201)


async def get_refund(request: web.Request) -> web.Response:
    return web.json_response(public(owned(request, REFUNDS, request.match_info["id"], "refund")))


# --- webhooks ------------------------------------------------------------------------------------------------


def canonical(body: bytes) -> bytes:
    """The verification API receives the event as parsed JSON, so both sides sign its re-serialised form."""
    try:
        return json.dumps(json.loads(body)).encode()
    except ValueError:
        return body


def sign(transmission_id: str, transmission_time: str, webhook_id: str, body: bytes) -> str:
    body = canonical(body)
    message = f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}".encode()
    return base64.b64encode(hmac.new(SIGNING_KEY, message, hashlib.sha256).digest()).decode()


def event_body(event_type: str, resource_type: str, resource: dict) -> bytes:
    summaries = {
        "CHECKOUT.ORDER.APPROVED": "An order has been approved by buyer",
        "PAYMENT.CAPTURE.COMPLETED": "Payment completed",
        "PAYMENT.CAPTURE.DENIED": "Payment denied",
        "PAYMENT.CAPTURE.REFUNDED": "A capture payment was refunded",
    }
    event = {
        "id": f"WH-{new_id(8)}-{new_id(17)}",
        "event_version": "1.0",
        "create_time": now(),
        "resource_type": resource_type,
        "resource_version": "2.0",
        "event_type": event_type,
        "summary": summaries.get(event_type, event_type),
        "resource": resource,
        "links": [],
    }
    return json.dumps(event).encode()


def delivery_target(url: str) -> tuple[str, dict[str, str]]:
    """``*.localhost`` names do not resolve here: connect to 127.0.0.1 and keep the name in the Host header."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host.endswith(".localhost"):
        netloc = f"127.0.0.1:{parts.port}" if parts.port else "127.0.0.1"
        return urlunsplit(parts._replace(netloc=netloc)), {"Host": parts.netloc}
    return url, {}


def transmission_headers(body: bytes, webhook_id: str) -> dict[str, str]:
    transmission_id = secrets.token_hex(16)
    transmission_time = now()
    return {
        "Content-Type": "application/json",
        "PAYPAL-TRANSMISSION-ID": transmission_id,
        "PAYPAL-TRANSMISSION-TIME": transmission_time,
        "PAYPAL-TRANSMISSION-SIG": sign(transmission_id, transmission_time, webhook_id, body),
        "PAYPAL-CERT-URL": f"{PUBLIC_BASE['url']}{CERT_PATH}",
        "PAYPAL-AUTH-ALGO": "SHA256withRSA",
        "User-Agent": "PayPal/AUHD-214.0-58607658",
    }


PUBLIC_BASE = {"url": "http://127.0.0.1:8421"}


async def deliver(body: bytes, client_id: str) -> None:
    await asyncio.sleep(WEBHOOK_DELAY_SECONDS)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for hook in list(WEBHOOKS):
            if hook["client_id"] and hook["client_id"] != client_id:
                continue  # PayPal sends an app's events only to that app's webhooks
            url, extra = delivery_target(hook["url"])
            headers = {**transmission_headers(body, hook["webhook_id"]), **extra}
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
            except (TimeoutError, aiohttp.ClientError, OSError):
                pass  # PayPal retries later; the fake simply drops it (reconciliation covers it)


def emit(event_type: str, resource_type: str, resource: dict, client_id: str) -> None:
    if not WEBHOOKS:
        return
    body = event_body(event_type, resource_type, resource)
    task = asyncio.get_running_loop().create_task(deliver(body, client_id))
    BACKGROUND.add(task)
    task.add_done_callback(BACKGROUND.discard)


async def register_webhook(request: web.Request) -> web.Response:
    data = await read_json(request)
    url, webhook_id = data.get("url"), data.get("webhook_id")
    if not isinstance(url, str) or not url or not isinstance(webhook_id, str) or not webhook_id:
        return web.json_response(
            {"error": 'expected JSON {"url": ..., "webhook_id": ..., "client_id": optional}'}, status=400
        )
    client_id = str(data.get("client_id") or "")  # given: only that client's events; else every event
    WEBHOOKS[:] = [hook for hook in WEBHOOKS if hook["url"] != url]
    WEBHOOKS.append({"url": url, "webhook_id": webhook_id, "client_id": client_id})
    return web.json_response({"webhooks": WEBHOOKS})


async def sign_webhook(request: web.Request) -> web.Response:
    """Test helper: the transmission headers PayPal would send ``body`` with for ``webhook_id``."""
    data = await read_json(request)
    body = str(data.get("body", "")).encode()
    return web.json_response(transmission_headers(body, str(data.get("webhook_id", ""))))


async def verify_webhook_signature(request: web.Request) -> web.Response:
    data = await read_json(request)
    required = (
        "auth_algo",
        "cert_url",
        "transmission_id",
        "transmission_sig",
        "transmission_time",
        "webhook_id",
        "webhook_event",
    )
    missing = [name for name in required if not data.get(name)]
    if missing:
        raise invalid_request(
            "MISSING_REQUIRED_PARAMETER", f"Missing required field(s): {', '.join(missing)}."
        )
    event = data["webhook_event"]
    body = event.encode() if isinstance(event, str) else json.dumps(event).encode()
    expected = sign(data["transmission_id"], data["transmission_time"], data["webhook_id"], body)
    ok = hmac.compare_digest(expected, str(data["transmission_sig"])) and data["auth_algo"] == "SHA256withRSA"
    return web.json_response({"verification_status": "SUCCESS" if ok else "FAILURE"})


async def fake_cert(request: web.Request) -> web.Response:
    return web.Response(text="-----BEGIN CERTIFICATE-----\nFAKE\n-----END CERTIFICATE-----\n")


# --- approval page -------------------------------------------------------------------------------------------

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fake PayPal – approve payment</title>
<style>body{{font-family:sans-serif;max-width:32rem;margin:3rem auto}}button{{margin:.3rem;padding:.5rem 1rem}}
</style></head>
<body><h1>Fake PayPal</h1>
<p>Pay <strong>{value} {currency}</strong>{description}</p>
<form method="post" action="/checkoutnow/{order_id}/approve">
<label>Funding source <select name="funding" id="funding">
<option value="ok">PayPal balance (succeeds)</option>
<option value="decline">Card that the bank declines at capture</option>
</select></label><br>
<button type="submit">Approve payment</button>
</form>
<form method="post" action="/checkoutnow/{order_id}/cancel"><button type="submit">Cancel</button></form>
</body></html>
"""


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit(parts._replace(query=query))


async def approval_page(request: web.Request) -> web.Response:
    order = ORDERS.get(request.query.get("token", ""))
    if order is None:
        return web.Response(status=404, text="No such order (token).")
    unit = order["purchase_units"][0]
    description = f" — {html.escape(unit['description'])}" if unit.get("description") else ""
    text = PAGE.format(
        value=html.escape(unit["amount"]["value"]),
        currency=html.escape(unit["amount"]["currency_code"]),
        description=description,
        order_id=html.escape(order["id"]),
    )
    return web.Response(text=text, content_type="text/html")


async def approval_submit(request: web.Request) -> web.Response:
    order = ORDERS.get(request.match_info["id"])
    if order is None:
        return web.Response(status=404, text="No such order.")
    form = await request.post()
    urls = ORDER_RETURN[order["id"]]
    try:
        payer_id = approve_order(order, decline=form.get("funding") == "decline")
    except PayPalError as error:
        return web.Response(status=422, text=error.description)
    if not urls["return_url"]:
        return web.Response(text="Approved (the order has no return_url).")
    raise web.HTTPSeeOther(with_query(urls["return_url"], token=order["id"], PayerID=payer_id))


async def approval_cancel(request: web.Request) -> web.Response:
    order = ORDERS.get(request.match_info["id"])
    if order is None:
        return web.Response(status=404, text="No such order.")
    cancel_url = ORDER_RETURN[order["id"]]["cancel_url"]
    if not cancel_url:
        return web.Response(text="Cancelled (the order has no cancel_url).")
    raise web.HTTPSeeOther(with_query(cancel_url, token=order["id"]))


async def fake_approve(request: web.Request) -> web.Response:
    order = ORDERS.get(request.match_info["id"])
    if order is None:
        raise not_found("order", request.match_info["id"])
    data = await read_json(request)
    payer_id = approve_order(order, decline=bool(data.get("decline")))
    return web.json_response({"id": order["id"], "status": order["status"], "payer_id": payer_id})


def build_app() -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, outage_middleware, auth_middleware, idempotency_middleware]
    )
    app.router.add_post("/v1/oauth2/token", oauth_token)
    app.router.add_post("/v2/checkout/orders", create_order)
    app.router.add_get("/v2/checkout/orders/{id}", get_order)
    app.router.add_post("/v2/checkout/orders/{id}/capture", capture_order)
    app.router.add_get("/v2/payments/captures/{id}", get_capture)
    app.router.add_post("/v2/payments/captures/{id}/refund", refund_capture)
    app.router.add_get("/v2/payments/refunds/{id}", get_refund)
    app.router.add_post("/v1/notifications/verify-webhook-signature", verify_webhook_signature)
    app.router.add_get("/checkoutnow", approval_page)
    app.router.add_post("/checkoutnow/{id}/approve", approval_submit)
    app.router.add_post("/checkoutnow/{id}/cancel", approval_cancel)
    app.router.add_get(CERT_PATH, fake_cert)
    app.router.add_post("/_fake/outage", outage_control(OUTAGE))
    app.router.add_post("/_fake/orders/{id}/approve", fake_approve)
    app.router.add_post("/_fake/webhooks", register_webhook)
    app.router.add_post("/_fake/webhooks/sign", sign_webhook)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Local fake of PayPal's REST API (Orders v2, payments, webhooks)"
    )
    parser.add_argument("--port", type=int, default=8421)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    PUBLIC_BASE["url"] = f"http://{args.host}:{args.port}"
    web.run_app(build_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
