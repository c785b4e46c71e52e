"""A local Stripe: localstripe's API, made closer to real Stripe where our code depends on it, plus our Stripe.js
stand-in and a control endpoint for simulating outages.

Run with ``python -m tourops.fakes.stripe --port N``. Routes added on top of localstripe:

- ``GET /js.stripe.com/v3/``: ``stripe.js`` next to this file (the subset of Stripe.js our checkout uses);
- ``POST /_fake/outage`` with JSON ``{"mode": "up" | "down" | "slow", "seconds": n}``;
- ``POST /v1/payment_intents/{id}/confirm`` and ``GET /v1/payment_intents/{id}`` also accept a publishable key
  with the intent's ``client_secret``, as Stripe does for the browser;
- every ``POST /v1/…`` honours ``Idempotency-Key`` (same key and parameters → the first answer replayed).

Webhooks are localstripe's: register with ``POST /_config/webhooks/{id}`` (``url``, ``secret``, optional
``events``); they are signed ``Stripe-Signature: t=<created>,v1=<HMAC-SHA256>`` about one second after the event.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from aiohttp import web
from localstripe import resources
from localstripe import server as localstripe_server
from localstripe import webhooks as localstripe_webhooks
from localstripe.errors import UserError
from localstripe.resources import Charge, Event, PaymentIntent, PaymentMethod, Refund
from localstripe.webhooks import schedule_webhook

from tourops.fakes.control import new_outage, outage_control

STRIPE_JS = Path(__file__).with_name("stripe.js")


async def _send_webhook(event) -> None:
    """localstripe's delivery, for endpoints on ``*.localhost`` too: like a browser (RFC 6761), the fake sends
    those to 127.0.0.1 with the original Host header — the dev launcher's tenants live on such names, which this
    machine's resolver does not know."""
    payload = json.dumps(event._export(), indent=2, sort_keys=True).encode()
    signed_payload = b"%d.%s" % (event.created, payload)
    await asyncio.sleep(0.2)
    for webhook in list(localstripe_webhooks._webhooks.values()):
        if webhook.events is not None and event.type not in webhook.events:
            continue
        signature = hmac.new(webhook.secret.encode(), signed_payload, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": f"t={event.created},v1={signature}",
        }
        url = webhook.url
        parts = urlsplit(url)
        if parts.hostname and parts.hostname.endswith(".localhost"):
            headers["Host"] = parts.netloc
            url = urlunsplit(parts._replace(netloc=f"127.0.0.1:{parts.port or 80}"))
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.post(url, data=payload, headers=headers) as response,
            ):
                print(f"webhook {event.type} → {webhook.url}: {response.status}", flush=True)
        except aiohttp.ClientError as error:
            print(f"webhook {event.type} → {webhook.url} failed: {error}", flush=True)


localstripe_webhooks._send_webhook = _send_webhook

# --- Fidelity patches: localstripe differs from Stripe in ways our gateway code would notice ----------------------

# localstripe pickles its whole store to /tmp/localstripe.pickle on every write: slow, and shared by every fake
# running in parallel (one per test worker). Our fakes start empty and keep state in memory only.
resources.Store.dump_to_disk = lambda self: None

# Stripe's test cards that decline when charged: number → (code, decline_code, message).
DECLINING_CARDS = {
    "4000000000000002": ("card_declined", "generic_decline", "Your card was declined."),
    "4000000000009995": ("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    "4000000000009987": ("card_declined", "lost_card", "Your card was declined."),
    "4000000000009979": ("card_declined", "stolen_card", "Your card was declined."),
    "4000000000000069": ("expired_card", "expired_card", "Your card has expired."),
    "4000000000000127": ("incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."),
    "4000000000000119": (
        "processing_error",
        "processing_error",
        "An error occurred while processing your card.",
    ),
    "4000000000000341": ("card_declined", "generic_decline", "Your card was declined."),
    "4000008260003178": ("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    "4000008400001629": ("card_declined", "card_declined", "Your card was declined."),
}
# Cards whose bank asks for 3-D Secure on every payment, off-session ones included (so an installment fails with
# authentication_required). Other 3-D Secure cards (4000002500003155) need it only until saved for off-session use.
ALWAYS_AUTHENTICATE = {"4000002760003184", "4000000000003063", "4000008260003178", "4000008400001629"}
AUTHENTICATION_REQUIRED_MESSAGE = (
    "Your card was declined. This transaction requires authentication."  # Stripe's wording
)

_original_pm_init = PaymentMethod.__init__


def _payment_method_init(self, *args, **kwargs):
    _original_pm_init(self, *args, **kwargs)
    if self.type == "card":
        self.card["brand"] = _card_brand(self._card_number)


def _card_brand(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if re.match(r"^(5[1-5]|2[2-7])", number):
        return "mastercard"
    if number.startswith(("6011", "65")):
        return "discover"
    return "unknown"


def _card_number(payment_method_id: str | None) -> str:
    if not payment_method_id:
        return ""
    return getattr(PaymentMethod._api_retrieve(payment_method_id), "_card_number", "")


PaymentMethod.__init__ = _payment_method_init
PaymentMethod._charging_is_declined = lambda self: (
    self.type == "card" and self._card_number in DECLINING_CARDS
)


def _set_charge_failure(self):
    code, decline_code, message = DECLINING_CARDS.get(
        _card_number(self.payment_method), ("card_declined", "generic_decline", "Your card was declined.")
    )
    self.status = "failed"
    self.failure_code = code
    self.failure_message = message
    self._decline_code = decline_code


Charge._set_auth_failure = _set_charge_failure


def _card_error(message: str, **fields) -> UserError:
    """A 402 as Stripe sends it (localstripe labels every error invalid_request_error)."""
    error = UserError(402, message, {key: value for key, value in fields.items() if value is not None})
    error.body["error"]["type"] = "card_error"
    return error


def _charge_card_error(self):
    schedule_webhook(Event("payment_intent.payment_failed", self))
    charge = self.latest_charge
    raise _card_error(
        charge.failure_message,
        code=charge.failure_code,
        decline_code=getattr(charge, "_decline_code", None),
        charge=charge.id,
        payment_intent=self._export(),
    )


def _last_payment_error(self):
    failure = getattr(self, "_off_session_failure", None)
    if failure:
        return failure
    if self._authentication_failed:
        return {
            "type": "invalid_request_error",
            "code": "payment_intent_authentication_failure",
            "message": "The provided PaymentMethod has failed authentication.",
        }
    charge = self.latest_charge
    if charge and charge.status == "failed":
        return {
            "type": "card_error",
            "charge": charge.id,
            "code": charge.failure_code,
            "decline_code": getattr(charge, "_decline_code", None),
            "message": charge.failure_message,
            "payment_method": {"id": charge.payment_method},
        }
    return None


_original_pi_init = PaymentIntent.__init__


def _payment_intent_init(
    self,
    description=None,
    setup_future_usage=None,
    automatic_payment_methods=None,
    receipt_email=None,
    **kwargs,
):
    if setup_future_usage not in (None, "", "on_session", "off_session"):
        raise UserError(400, "Invalid setup_future_usage: must be on_session or off_session")
    _original_pi_init(self, **kwargs)
    self.description = description
    self.setup_future_usage = setup_future_usage or None
    self.automatic_payment_methods = automatic_payment_methods
    self.receipt_email = receipt_email
    self.payment_method_types = kwargs.get("payment_method_types") or ["card"]
    self._off_session_failure = None


def _payment_intent_on_success(self):
    # Stripe attaches the card to the customer once a payment made with setup_future_usage succeeds.
    if self.setup_future_usage and self.customer and self.payment_method:
        PaymentMethod._api_retrieve(self.payment_method).customer = self.customer
    schedule_webhook(Event("payment_intent.succeeded", self))


def _payment_intent_confirm(self, on_failure_now, off_session=False):
    self._authentication_failed = False
    self._off_session_failure = None
    payment_method = PaymentMethod._api_retrieve(self.payment_method)
    if off_session and payment_method.type == "card":
        saved = payment_method.customer is not None and payment_method.customer == self.customer
        number = payment_method._card_number
        if number in ALWAYS_AUTHENTICATE or (payment_method._requires_authentication() and not saved):
            self._off_session_failure = {
                "type": "card_error",
                "code": "authentication_required",
                "decline_code": "authentication_required",
                "message": AUTHENTICATION_REQUIRED_MESSAGE,
                "payment_method": {"id": payment_method.id},
            }
            failed_method, self.payment_method = self.payment_method, None
            schedule_webhook(Event("payment_intent.payment_failed", self))
            raise _card_error(
                AUTHENTICATION_REQUIRED_MESSAGE,
                code="authentication_required",
                decline_code="authentication_required",
                payment_method={"id": failed_method},
                payment_intent=self._export(),
            )
        self._create_charge(on_failure_now=on_failure_now)
    elif payment_method._requires_authentication():
        self.next_action = {
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": ""},
        }
    else:
        self._create_charge(on_failure_now=on_failure_now)


def _payment_intent_api_create(cls, confirm=None, off_session=None, payment_method=None, **data):
    confirm = resources.try_convert_to_bool(confirm)
    off_session = resources.try_convert_to_bool(off_session) or False
    if off_session and confirm is not True:
        raise UserError(400, "off_session can only be used with confirm=true")
    obj = cls(payment_method=payment_method, **data)
    if confirm:
        if not obj.payment_method:
            raise UserError(
                400, "You cannot confirm this PaymentIntent because it's missing a payment method."
            )
        obj._confirm(on_failure_now=obj._report_failure, off_session=off_session)
    return obj


def _payment_intent_api_confirm(
    cls, id, payment_method=None, off_session=None, return_url=None, setup_future_usage=None, **kwargs
):
    kwargs.pop("use_stripe_sdk", None)
    kwargs.pop("payment_method_options", None)
    if kwargs:
        raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
    obj = cls._api_retrieve(id)
    if obj.status not in ("requires_payment_method", "requires_confirmation", "requires_action"):
        raise UserError(
            400,
            f"This PaymentIntent's status is {obj.status}, so it cannot be confirmed.",
            {"code": "payment_intent_unexpected_state"},
        )
    if payment_method is not None:
        PaymentMethod._api_retrieve(payment_method)  # 404 for an unknown method
        obj.payment_method = payment_method
    if not obj.payment_method:
        raise UserError(400, "You cannot confirm this PaymentIntent because it's missing a payment method.")
    if setup_future_usage:
        obj.setup_future_usage = setup_future_usage
    obj.next_action = None
    obj.latest_charge = None  # a new attempt after a decline gets a new charge
    obj._confirm(
        on_failure_now=obj._report_failure, off_session=resources.try_convert_to_bool(off_session) or False
    )
    return obj


_original_cancel = PaymentIntent._api_cancel.__func__


def _payment_intent_api_cancel(cls, id, cancellation_reason=None, **kwargs):
    obj = _original_cancel(cls, id, **kwargs)
    obj.cancellation_reason = cancellation_reason
    schedule_webhook(Event("payment_intent.canceled", obj))
    return obj


def _amount_received(self):
    charge = self.latest_charge
    return charge.amount if charge is not None and charge.status == "succeeded" and charge.captured else 0


PaymentIntent.__init__ = _payment_intent_init
PaymentIntent.amount_received = property(_amount_received)
PaymentIntent._on_success = _payment_intent_on_success
PaymentIntent._report_failure = _charge_card_error
PaymentIntent._confirm = _payment_intent_confirm
PaymentIntent.last_payment_error = property(_last_payment_error)
PaymentIntent._api_create = classmethod(_payment_intent_api_create)
PaymentIntent._api_confirm = classmethod(_payment_intent_api_confirm)
PaymentIntent._api_cancel = classmethod(_payment_intent_api_cancel)

_original_refund_init = Refund.__init__


def _refund_init(self, charge=None, payment_intent=None, amount=None, reason=None, **kwargs):
    if reason not in (None, "duplicate", "fraudulent", "requested_by_customer"):
        raise UserError(400, f"Invalid reason: {reason}", {"param": "reason"})
    if payment_intent is not None and charge is None:
        intent = PaymentIntent._api_retrieve(payment_intent)
        if intent.latest_charge is None:
            raise UserError(
                400, f"PaymentIntent {payment_intent} does not have a successful charge to refund."
            )
        charge = intent.latest_charge.id
    charge_obj = Charge._api_retrieve(charge) if charge else None
    requested = resources.try_convert_to_int(amount)
    if charge_obj is not None and isinstance(requested, int):
        left = charge_obj.amount - charge_obj.amount_refunded
        if requested > left:
            raise UserError(
                400,
                f"Refund amount ({requested}) is greater than unrefunded amount on charge ({left})",
                {"param": "amount"},
            )
    _original_refund_init(self, charge=charge, amount=amount, **kwargs)
    self.payment_intent = charge_obj.payment_intent if charge_obj else payment_intent
    self.reason = reason
    schedule_webhook(Event("refund.created", self))
    schedule_webhook(Event("charge.refunded", charge_obj))


Refund.__init__ = _refund_init

# --- Our HTTP layer -------------------------------------------------------------------------------------------------

OUTAGE = new_outage()
# (api key, Idempotency-Key) → (hash of the parameters, status, body, content type)
IDEMPOTENT_RESULTS: dict[tuple[str, str], tuple[str, int, bytes, str]] = {}

PUBLISHABLE_KEY_ROUTES = (
    ("POST", re.compile(r"^/v1/payment_methods$")),
    ("POST", re.compile(r"^/v1/payment_intents/\w+/confirm$")),
    ("POST", re.compile(r"^/v1/payment_intents/\w+/_authenticate$")),
    ("GET", re.compile(r"^/v1/payment_intents/\w+$")),
    ("POST", re.compile(r"^/v1/tokens$")),
    ("POST", re.compile(r"^/v1/sources$")),
)


def stripe_error(status: int, message: str, error_type: str, **fields) -> web.Response:
    return web.json_response({"error": {"type": error_type, "message": message, **fields}}, status=status)


async def request_params(request: web.Request) -> dict:
    if request.method == "POST":
        return await localstripe_server.get_post_data(request, remove_auth=False) or {}
    return localstripe_server.unflatten_data(request.query)


def publishable_key(params: dict) -> str:
    key = params.get("key")
    return key if isinstance(key, str) and key.startswith("pk_") and len(key) > 5 else ""


@web.middleware
async def outage_middleware(request: web.Request, handler):
    if request.path.startswith("/v1/"):
        if OUTAGE["mode"] == "down":
            return stripe_error(500, "Simulated Stripe outage (fake server set to down).", "api_error")
        if OUTAGE["mode"] == "slow":
            await asyncio.sleep(OUTAGE["seconds"])
    return await handler(request)


@web.middleware
async def auth_middleware(request: web.Request, handler):
    """Secret key in the Authorization header, or (for the calls Stripe.js makes) a publishable key in ``key``."""
    if request.method == "OPTIONS" or request.path.startswith(("/js.stripe.com/", "/_config/", "/_fake/")):
        return await handler(request)
    if localstripe_server.get_api_key(request) is None:
        allowed = any(
            method == request.method and path.match(request.path) for method, path in PUBLISHABLE_KEY_ROUTES
        )
        if not (allowed and publishable_key(await request_params(request))):
            return stripe_error(
                401, "Invalid API Key provided (a secret key sk_… is required here).", "invalid_request_error"
            )
    return await handler(request)


@web.middleware
async def idempotency_middleware(request: web.Request, handler):
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key or not request.path.startswith("/v1/"):
        return await handler(request)
    slot = (request.headers.get("Authorization", ""), key)
    fingerprint = hashlib.sha256(request.path.encode() + b"?" + await request.read()).hexdigest()
    if slot in IDEMPOTENT_RESULTS:
        first_fingerprint, status, body, content_type = IDEMPOTENT_RESULTS[slot]
        if first_fingerprint != fingerprint:
            return stripe_error(
                400,
                "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                "idempotency_error",
            )
        response = web.Response(status=status, body=body, content_type=content_type)
        response.headers["Idempotent-Replayed"] = "true"
        return response
    try:
        response = await handler(request)
    except UserError as error:
        response = error.to_response()
    if response.status < 500:  # Stripe does not save server errors: a retry runs again
        IDEMPOTENT_RESULTS[slot] = (fingerprint, response.status, response.body, response.content_type)
    return response


@web.middleware
async def cors_preflight_middleware(request: web.Request, handler):
    if request.method == "OPTIONS":
        return web.Response(status=204)
    return await handler(request)


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    origin = request.headers.get("Origin")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, Accept, Authorization"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS, DELETE"
        response.headers["Vary"] = "Origin"


async def stripe_js(request: web.Request) -> web.Response:
    return web.Response(
        text=STRIPE_JS.read_text(encoding="utf-8"),
        content_type="application/javascript",
        headers={"Cache-Control": "no-cache"},
    )


def client_secret_matches(intent: PaymentIntent, params: dict) -> bool:
    return params.get("client_secret") == intent.client_secret


async def retrieve_payment_intent(request: web.Request) -> web.Response:
    params = await request_params(request)
    intent = PaymentIntent._api_retrieve(request.match_info["id"])
    if localstripe_server.get_api_key(request) is None and not client_secret_matches(intent, params):
        return stripe_error(
            404, "No such payment_intent (client_secret does not match).", "invalid_request_error"
        )
    expand = params.get("expand")
    return localstripe_server.json_response(intent._export(expand=expand))


async def confirm_payment_intent(request: web.Request) -> web.Response:
    params = await request_params(request)
    intent = PaymentIntent._api_retrieve(request.match_info["id"])
    by_browser = localstripe_server.get_api_key(request) is None
    if by_browser and not client_secret_matches(intent, params):
        return stripe_error(
            404, "No such payment_intent (client_secret does not match).", "invalid_request_error"
        )
    for browser_only in ("key", "client_secret", "payment_user_agent", "referrer"):
        params.pop(browser_only, None)
    expand = params.pop("expand", None)
    return localstripe_server.json_response(
        PaymentIntent._api_confirm(intent.id, **params)._export(expand=expand)
    )


def build_app() -> web.Application:
    app = web.Application(
        middlewares=[
            localstripe_server.error_middleware,
            cors_preflight_middleware,
            outage_middleware,
            auth_middleware,
            idempotency_middleware,
        ]
    )
    app.on_response_prepare.append(add_cors_headers)
    # Ours first: the router takes the first match, and these replace localstripe's own.
    app.router.add_get("/js.stripe.com/v3/", stripe_js)
    app.router.add_post("/_fake/outage", outage_control(OUTAGE))
    app.router.add_get("/v1/payment_intents/{id}", retrieve_payment_intent)
    app.router.add_post("/v1/payment_intents/{id}/confirm", confirm_payment_intent)
    # localstripe's route table holds its own functions: re-route to the patched ones.
    cancel_url = "/v1/payment_intents/{id}/cancel"
    app.router.add_post(cancel_url, localstripe_server.api_extra(PaymentIntent._api_cancel, cancel_url))
    taken = {(route.method, route.resource.canonical) for route in app.router.routes()}
    for route in localstripe_server.app.router.routes():
        path = route.resource.canonical
        if (route.method, path) in taken or route.method == "HEAD":
            continue
        app.router.add_route(route.method, path, route.handler)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Local fake of the Stripe API and Stripe.js")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    web.run_app(build_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
