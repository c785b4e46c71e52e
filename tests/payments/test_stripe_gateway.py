"""StripeGateway through the real stripe SDK against the local fake Stripe (tourops.fakes.stripe).

The browser's part (Payment Element → PaymentMethod → confirm with the client secret) is driven over HTTP with
the publishable key, exactly as the fake Stripe.js does it."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import pytest
import requests

from payments.gateways.base import (
    CANCELLED,
    FAILED,
    PENDING,
    REFUND_SUCCEEDED,
    SUCCEEDED,
    GatewayRejected,
    GatewayUnavailable,
    InvalidWebhook,
)
from payments.gateways.stripe import StripeGateway, from_stripe_amount, to_stripe_amount
from tests.fake_stripe import TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY, TEST_WEBHOOK_SECRET

VISA = "4242424242424242"
DECLINED = "4000000000000002"
INSUFFICIENT_FUNDS = "4000000000009995"
THREE_D_SECURE = "4000002760003184"  # authentication on every payment, off-session ones too
THREE_D_SECURE_ONCE = "4000002500003155"  # authentication until saved for off-session use
CHARGE_DECLINED_AFTER_SAVING = "4000000000000341"


def key() -> str:
    return f"test-{uuid.uuid4()}"


def start(gateway, amount=12_500, currency="EUR", **kwargs):
    return gateway.create_payment(
        amount=amount,
        currency=currency,
        idempotency_key=key(),
        description="Booking BK-1",
        metadata={"booking": "BK-1", "tenant": "t1"},
        **kwargs,
    )


def saved_card(gateway, fake_stripe, number: str) -> tuple[str, str]:
    """A customer with ``number`` saved through a first on-session payment (authenticated when asked)."""
    customer = gateway.create_customer(
        email="ana@example.com", name="Ana", idempotency_key=key(), metadata={}
    )
    payment = start(gateway, customer=customer, save_payment_method=True)
    confirmed = fake_stripe.confirm(payment.client_secret, number).json()
    if confirmed["status"] == "requires_action":
        fake_stripe.authenticate(payment.reference, payment.client_secret, success=True)
    paid = gateway.fetch_payment(payment.reference)
    assert paid.status == SUCCEEDED
    assert (paid.customer, paid.payment_method.startswith("pm_")) == (customer, True)
    return customer, paid.payment_method


def charge_saved(gateway, customer, payment_method, amount=5_000):
    return gateway.charge_saved_method(
        amount=amount,
        currency="EUR",
        customer=customer,
        payment_method=payment_method,
        idempotency_key=key(),
        description="Installment 2",
        metadata={"installment": "2"},
    )


# --- Payments in the browser -----------------------------------------------------------------------------------


def test_card_payment_succeeds_with_charge_and_card_summary(stripe_gateway, fake_stripe):
    payment = start(stripe_gateway)
    assert payment.status == PENDING
    assert payment.client_secret.startswith(payment.reference + "_secret_")
    assert payment.metadata == {"booking": "BK-1", "tenant": "t1"}

    assert fake_stripe.confirm(payment.client_secret, VISA).status_code == 200

    paid = stripe_gateway.fetch_payment(payment.reference)
    assert paid.status == SUCCEEDED
    assert (paid.amount, paid.amount_received, paid.currency) == (12_500, 12_500, "EUR")
    assert paid.capture_reference.startswith("ch_")
    assert paid.payment_method.startswith("pm_")
    assert paid.payment_method_summary == "Visa •••• 4242"
    assert stripe_gateway.capture(payment.reference, idempotency_key=key()) == paid


@pytest.mark.parametrize(
    ("number", "failure_code"), [(DECLINED, "card_declined"), (INSUFFICIENT_FUNDS, "insufficient_funds")]
)
def test_declined_card_fails_the_payment_with_the_reason(stripe_gateway, fake_stripe, number, failure_code):
    payment = start(stripe_gateway)

    answer = fake_stripe.confirm(payment.client_secret, number)
    assert answer.status_code == 402
    assert answer.json()["error"]["type"] == "card_error"

    failed = stripe_gateway.fetch_payment(payment.reference)
    assert (failed.status, failed.failure_code) == (FAILED, failure_code)
    assert failed.failure_reason
    assert failed.capture_reference == ""


def test_three_d_secure_pending_then_completed(stripe_gateway, fake_stripe):
    payment = start(stripe_gateway)
    assert fake_stripe.confirm(payment.client_secret, THREE_D_SECURE).json()["status"] == "requires_action"

    waiting = stripe_gateway.fetch_payment(payment.reference)
    assert (waiting.status, waiting.requires_action) == (PENDING, True)

    fake_stripe.authenticate(payment.reference, payment.client_secret, success=True)
    assert stripe_gateway.fetch_payment(payment.reference).status == SUCCEEDED


def test_three_d_secure_failed_authentication_fails_the_payment(stripe_gateway, fake_stripe):
    payment = start(stripe_gateway)
    fake_stripe.confirm(payment.client_secret, THREE_D_SECURE_ONCE)
    fake_stripe.authenticate(payment.reference, payment.client_secret, success=False)

    failed = stripe_gateway.fetch_payment(payment.reference)
    assert (failed.status, failed.failure_code) == (FAILED, "payment_intent_authentication_failure")


def test_browser_cannot_confirm_with_a_wrong_client_secret(stripe_gateway, fake_stripe):
    payment = start(stripe_gateway)
    answer = fake_stripe.browser_post(
        f"/v1/payment_intents/{payment.reference}/confirm",
        {
            "payment_method": fake_stripe.add_card(VISA),
            "client_secret": payment.reference + "_secret_wrong",
        },
    )
    assert answer.status_code == 404
    assert stripe_gateway.fetch_payment(payment.reference).status == PENDING


def test_cancel_an_unpaid_payment(stripe_gateway):
    payment = start(stripe_gateway)
    assert stripe_gateway.cancel_payment(payment.reference).status == CANCELLED


def test_same_idempotency_key_creates_one_payment_intent(stripe_gateway):
    shared = key()
    first, second = (
        stripe_gateway.create_payment(
            amount=1_000, currency="EUR", idempotency_key=shared, description="x", metadata={}
        )
        for _ in range(2)
    )
    assert first.reference == second.reference
    third = start(stripe_gateway, amount=1_000)
    assert third.reference != first.reference


# --- Saved cards, off-session ------------------------------------------------------------------------------------


def test_saving_a_card_needs_a_customer(stripe_gateway):
    with pytest.raises(GatewayRejected, match="customer"):
        start(stripe_gateway, save_payment_method=True)


def test_off_session_charge_on_saved_card_succeeds(stripe_gateway, fake_stripe):
    customer, payment_method = saved_card(stripe_gateway, fake_stripe, VISA)

    installment = charge_saved(stripe_gateway, customer, payment_method)
    assert installment.status == SUCCEEDED
    assert (installment.amount, installment.customer, installment.payment_method) == (
        5_000,
        customer,
        payment_method,
    )
    assert installment.capture_reference.startswith("ch_")
    assert installment.metadata == {"installment": "2"}


def test_off_session_after_one_time_authentication_succeeds(stripe_gateway, fake_stripe):
    customer, payment_method = saved_card(stripe_gateway, fake_stripe, THREE_D_SECURE_ONCE)
    assert charge_saved(stripe_gateway, customer, payment_method).status == SUCCEEDED


def test_off_session_decline_is_a_failed_payment_not_an_exception(stripe_gateway, fake_stripe):
    customer = stripe_gateway.create_customer(
        email="bo@example.com", name="Bo", idempotency_key=key(), metadata={}
    )
    payment_method = fake_stripe.attach_card(CHARGE_DECLINED_AFTER_SAVING, customer)

    installment = charge_saved(stripe_gateway, customer, payment_method)
    assert (installment.status, installment.failure_code) == (FAILED, "card_declined")
    assert installment.reference.startswith("pi_")
    assert stripe_gateway.fetch_payment(installment.reference).status == FAILED


def test_off_session_authentication_required_is_a_failed_payment(stripe_gateway, fake_stripe):
    customer, payment_method = saved_card(stripe_gateway, fake_stripe, THREE_D_SECURE)

    installment = charge_saved(stripe_gateway, customer, payment_method)
    assert (installment.status, installment.failure_code) == (FAILED, "authentication_required")
    assert installment.reference.startswith("pi_")
    refetched = stripe_gateway.fetch_payment(installment.reference)
    assert (refetched.status, refetched.failure_code) == (FAILED, "authentication_required")


# --- Refunds ---------------------------------------------------------------------------------------------------


def paid_payment(gateway, fake_stripe, amount=10_000):
    payment = start(gateway, amount=amount)
    fake_stripe.confirm(payment.client_secret, VISA)
    return gateway.fetch_payment(payment.reference)


def refund(gateway, paid, amount, idempotency_key=None, reason=""):
    return gateway.refund(
        payment_reference=paid.reference,
        capture_reference=paid.capture_reference,
        amount=amount,
        currency=paid.currency,
        idempotency_key=idempotency_key or key(),
        reason=reason,
    )


def test_partial_then_full_refund_and_fetch(stripe_gateway, fake_stripe):
    paid = paid_payment(stripe_gateway, fake_stripe)

    partial = refund(stripe_gateway, paid, 2_500, reason="requested_by_customer")
    assert (partial.status, partial.amount, partial.currency) == (REFUND_SUCCEEDED, 2_500, "EUR")
    assert partial.reference.startswith("re_")
    assert partial.payment_reference == paid.reference

    rest = refund(stripe_gateway, paid, 7_500, reason="Tour cancelled by the operator")
    assert rest.amount == 7_500
    assert stripe_gateway.fetch_refund(partial.reference) == partial

    with pytest.raises(GatewayRejected, match="greater than"):
        refund(stripe_gateway, paid, 1)


def test_same_idempotency_key_refunds_once(stripe_gateway, fake_stripe):
    paid = paid_payment(stripe_gateway, fake_stripe)
    shared = key()
    first = refund(stripe_gateway, paid, 3_000, idempotency_key=shared)
    second = refund(stripe_gateway, paid, 3_000, idempotency_key=shared)
    assert first.reference == second.reference
    # 7_000 is left only if the second call did not refund again.
    assert refund(stripe_gateway, paid, 7_000).amount == 7_000


# --- Amounts and currencies ------------------------------------------------------------------------------------


def stripe_amount_at_fake(fake_stripe, reference: str) -> tuple[int, str]:
    intent = requests.get(
        f"{fake_stripe.base_url}/v1/payment_intents/{reference}", auth=(TEST_SECRET_KEY, ""), timeout=5
    ).json()
    return intent["amount"], intent["currency"]


@pytest.mark.parametrize(
    ("currency", "ours", "stripes"),
    [
        ("JPY", 15_000, 15_000),
        ("KRW", 50_000, 50_000),
        ("EUR", 12_345, 12_345),
        ("KWD", 12_340, 12_340),
        ("BHD", 7_550, 7_550),
        ("JOD", 10_000, 10_000),
        ("ISK", 9_900, 990_000),
    ],
)
def test_amounts_reach_stripe_in_its_unit(stripe_gateway, fake_stripe, currency, ours, stripes):
    payment = start(stripe_gateway, amount=ours, currency=currency)
    assert stripe_amount_at_fake(fake_stripe, payment.reference) == (stripes, currency.lower())
    assert (payment.amount, payment.currency) == (ours, currency)


def test_three_decimal_amount_not_a_multiple_of_ten_is_refused(stripe_gateway):
    with pytest.raises(GatewayRejected, match="multiples of 10"):
        start(stripe_gateway, amount=12_345, currency="KWD")


def test_currency_support_and_conversions():
    gateway = StripeGateway(TEST_SECRET_KEY, TEST_PUBLISHABLE_KEY, TEST_WEBHOOK_SECRET, api_base="http://x")
    assert (
        gateway.supports_currency("EUR")
        and gateway.supports_currency("jpy")
        and gateway.supports_currency("BHD")
    )
    assert not gateway.supports_currency("CLF")  # four decimals
    assert not gateway.supports_currency("XYZ")
    with pytest.raises(GatewayRejected, match="multiple of 100"):
        to_stripe_amount(12_345, "MGA")  # two decimals in ISO, whole ariary at Stripe
    assert to_stripe_amount(12_300, "MGA") == 123
    assert from_stripe_amount(123, "MGA") == 12_300
    assert from_stripe_amount(990_000, "ISK") == 9_900


# --- Webhooks --------------------------------------------------------------------------------------------------


def signed(body: bytes, *, secret=TEST_WEBHOOK_SECRET, timestamp=None) -> dict:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={timestamp},v1={digest}"}


def event_body(event_type: str, obj: dict) -> bytes:
    return json.dumps(
        {"id": "evt_1", "object": "event", "type": event_type, "data": {"object": obj}}
    ).encode()


def test_webhook_events_verified_and_classified(stripe_gateway):
    body = event_body("payment_intent.succeeded", {"id": "pi_1", "object": "payment_intent"})
    event = stripe_gateway.parse_webhook(body, signed(body))
    assert (event.id, event.type, event.object_kind, event.object_reference) == (
        "evt_1",
        "payment_intent.succeeded",
        "payment",
        "pi_1",
    )

    body = event_body("refund.updated", {"id": "re_1", "object": "refund", "payment_intent": "pi_2"})
    event = stripe_gateway.parse_webhook(body, {"stripe-signature": signed(body)["Stripe-Signature"]})
    assert (event.object_kind, event.object_reference, event.payment_reference) == ("refund", "re_1", "pi_2")

    body = event_body("charge.refunded", {"id": "ch_1", "object": "charge", "payment_intent": "pi_3"})
    assert stripe_gateway.parse_webhook(body, signed(body)).object_reference == "pi_3"

    body = event_body("customer.created", {"id": "cus_1", "object": "customer"})
    assert stripe_gateway.parse_webhook(body, signed(body)).object_kind == "other"


def test_webhook_forged_stale_or_garbage_is_refused(stripe_gateway):
    body = event_body("payment_intent.succeeded", {"id": "pi_1"})
    with pytest.raises(InvalidWebhook, match="signature"):
        stripe_gateway.parse_webhook(body, signed(body, secret="whsec_attacker"))
    with pytest.raises(InvalidWebhook, match="signature"):
        stripe_gateway.parse_webhook(body.replace(b"pi_1", b"pi_2"), signed(body))
    with pytest.raises(InvalidWebhook):
        stripe_gateway.parse_webhook(body, signed(body, timestamp=int(time.time()) - 3600))
    with pytest.raises(InvalidWebhook, match="Stripe-Signature"):
        stripe_gateway.parse_webhook(body, {})
    garbage = b"\x00not json at all"
    with pytest.raises(InvalidWebhook, match="not an event"):
        stripe_gateway.parse_webhook(garbage, signed(garbage))


def test_fake_delivers_signed_webhooks_the_gateway_accepts(stripe_gateway, fake_stripe):
    """localstripe's own delivery signs the way Stripe does: t=…,v1=HMAC(secret, "t.body")."""
    received: list[tuple[bytes, dict]] = []
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from threading import Thread

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            received.append((self.rfile.read(int(self.headers["Content-Length"])), dict(self.headers)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        fake_stripe.register_webhook(
            f"test-{uuid.uuid4()}",
            f"http://127.0.0.1:{server.server_port}/hook",
            TEST_WEBHOOK_SECRET,
            events=["payment_intent.succeeded"],
        )
        payment = paid_payment(stripe_gateway, fake_stripe)
        deadline = time.monotonic() + 5
        # Earlier tests' payments may be delivered too (the fake sends about 1 s after each event).
        while payment.reference.encode() not in b"".join(body for body, _ in received):
            assert time.monotonic() < deadline, "the fake did not deliver payment_intent.succeeded within 5 s"
            time.sleep(0.05)
    finally:
        server.shutdown()
    events = [stripe_gateway.parse_webhook(body, headers) for body, headers in received]
    assert ("payment_intent.succeeded", "payment", payment.reference) in [
        (event.type, event.object_kind, event.object_reference) for event in events
    ]


# --- Outages ---------------------------------------------------------------------------------------------------


def test_outage_down_is_gateway_unavailable(stripe_gateway, fake_stripe):
    fake_stripe.outage("down")
    with pytest.raises(GatewayUnavailable):
        start(stripe_gateway)
    fake_stripe.outage("up")
    assert start(stripe_gateway).status == PENDING


def test_slow_answer_beyond_the_timeout_is_gateway_unavailable(fake_stripe):
    impatient = StripeGateway(
        TEST_SECRET_KEY,
        TEST_PUBLISHABLE_KEY,
        TEST_WEBHOOK_SECRET,
        api_base=fake_stripe.base_url,
        timeout=0.3,
        max_network_retries=0,
    )
    fake_stripe.outage("slow", seconds=1)
    try:
        started = time.monotonic()
        with pytest.raises(GatewayUnavailable):
            start(impatient)
        assert time.monotonic() - started < 0.9
    finally:
        fake_stripe.outage("up")


def test_bad_secret_key_is_rejected_not_unavailable(fake_stripe):
    wrong = StripeGateway("sk_", TEST_PUBLISHABLE_KEY, TEST_WEBHOOK_SECRET, api_base=fake_stripe.base_url)
    with pytest.raises(GatewayRejected):
        start(wrong)


def test_a_refund_carries_our_reference_back(stripe_gateway, fake_stripe):
    paid = paid_payment(stripe_gateway, fake_stripe)
    ours = str(uuid.uuid4())
    made = stripe_gateway.refund(
        payment_reference=paid.reference,
        capture_reference=paid.capture_reference,
        amount=700,
        currency="EUR",
        idempotency_key=key(),
        reason="Late pickup",
        client_reference=ours,
    )
    fetched = stripe_gateway.fetch_refund(made.reference)
    assert (made.client_reference, fetched.client_reference) == (ours, ours)  # metadata "refund"
    assert (fetched.capture_reference, fetched.payment_reference) == (paid.capture_reference, paid.reference)
