"""PayPalGateway through the real paypal-server-sdk against the local fake PayPal (tourops.fakes.paypal)."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from payments.gateways.base import (
    PENDING,
    REFUND_SUCCEEDED,
    SUCCEEDED,
    GatewayDeclined,
    GatewayRejected,
    GatewayUnavailable,
    InvalidWebhook,
)
from payments.gateways.paypal import PayPalGateway
from tests.fake_paypal import TEST_CLIENT_ID, TEST_CLIENT_SECRET, TEST_WEBHOOK_ID

WEBHOOK_SETTLE_SECONDS = 0.5  # the fake delivers about 0.2 s after a change


def key() -> str:
    return uuid.uuid4().hex


def new_order(gateway: PayPalGateway, amount: int = 12345, currency: str = "EUR", idempotency_key: str = ""):
    return gateway.create_payment(
        amount=amount,
        currency=currency,
        idempotency_key=idempotency_key or key(),
        description="Northern lights tour",
        metadata={"payment_id": "42"},
        return_url="https://t.example/back",
        cancel_url="https://t.example/cancel",
    )


def paid_order(gateway: PayPalGateway, fake_paypal, amount: int = 10000, currency: str = "EUR"):
    order = new_order(gateway, amount, currency)
    fake_paypal.approve(order.reference)
    return gateway.capture(order.reference, idempotency_key=key())


def test_create_approve_capture_succeeds_with_a_capture_id(paypal_gateway, fake_paypal):
    order = new_order(paypal_gateway)
    assert order.status == PENDING and order.requires_action
    assert order.approve_url.startswith(f"{fake_paypal.base_url}/checkoutnow?token={order.reference}")
    assert (order.amount, order.currency) == (12345, "EUR")

    fake_paypal.approve(order.reference)
    approved = paypal_gateway.fetch_payment(order.reference)
    assert approved.status == PENDING and not approved.requires_action  # ours to capture now

    captured = paypal_gateway.capture(order.reference, idempotency_key=key())
    assert captured.status == SUCCEEDED
    assert captured.capture_reference and captured.amount_received == 12345
    assert paypal_gateway.fetch_payment(order.reference).capture_reference == captured.capture_reference


def test_capture_before_approval_is_rejected_clearly(paypal_gateway):
    order = new_order(paypal_gateway)
    with pytest.raises(GatewayRejected, match="ORDER_NOT_APPROVED") as caught:
        paypal_gateway.capture(order.reference, idempotency_key=key())
    assert caught.value.code == "order_not_approved"


def test_capturing_again_with_a_new_key_answers_the_one_capture(paypal_gateway, fake_paypal):
    order = new_order(paypal_gateway)
    fake_paypal.approve(order.reference)
    first = paypal_gateway.capture(order.reference, idempotency_key=key())
    again = paypal_gateway.capture(order.reference, idempotency_key=key())  # PayPal: ORDER_ALREADY_CAPTURED
    assert (again.status, again.capture_reference, again.amount) == (
        SUCCEEDED,
        first.capture_reference,
        first.amount,
    )


def test_declined_funding_source_raises_declined(paypal_gateway, fake_paypal):
    order = new_order(paypal_gateway)
    fake_paypal.approve(order.reference, decline=True)
    with pytest.raises(GatewayDeclined) as caught:
        paypal_gateway.capture(order.reference, idempotency_key=key())
    assert caught.value.code == "instrument_declined"
    # As at PayPal, the payer can go back, choose another funding source, and the order captures.
    fake_paypal.approve(order.reference)
    assert paypal_gateway.capture(order.reference, idempotency_key=key()).status == SUCCEEDED


def test_create_and_capture_are_idempotent_by_key(paypal_gateway, fake_paypal):
    create_key = key()
    first = new_order(paypal_gateway, idempotency_key=create_key)
    again = new_order(paypal_gateway, idempotency_key=create_key)
    assert again.reference == first.reference
    assert new_order(paypal_gateway).reference != first.reference

    fake_paypal.approve(first.reference)
    capture_key = key()
    captured = paypal_gateway.capture(first.reference, idempotency_key=capture_key)
    replayed = paypal_gateway.capture(first.reference, idempotency_key=capture_key)
    assert replayed.status == SUCCEEDED and replayed.capture_reference == captured.capture_reference


def test_full_partial_and_excess_refunds(paypal_gateway, fake_paypal):
    captured = paid_order(paypal_gateway, fake_paypal, amount=10000)
    refund_args = {"payment_reference": captured.reference, "capture_reference": captured.capture_reference}

    partial_key = key()
    partial = paypal_gateway.refund(**refund_args, amount=2550, currency="EUR", idempotency_key=partial_key)
    assert (partial.status, partial.amount, partial.payment_reference) == (
        REFUND_SUCCEEDED,
        2550,
        captured.reference,
    )
    replay = paypal_gateway.refund(**refund_args, amount=2550, currency="EUR", idempotency_key=partial_key)
    assert replay.reference == partial.reference  # the same key refunds once

    with pytest.raises(GatewayRejected, match="REFUND_AMOUNT_EXCEEDED"):
        paypal_gateway.refund(**refund_args, amount=7451, currency="EUR", idempotency_key=key())

    rest = paypal_gateway.refund(**refund_args, amount=7450, currency="EUR", idempotency_key=key())
    assert paypal_gateway.fetch_refund(rest.reference).amount == 7450
    # Fully refunded stays a succeeded payment (the refunds are separate records).
    assert paypal_gateway.fetch_payment(captured.reference).status == SUCCEEDED


def test_jpy_has_no_decimals_and_eur_two(paypal_gateway, fake_paypal):
    import requests

    yen = new_order(paypal_gateway, amount=15000, currency="JPY")
    euro = new_order(paypal_gateway, amount=1999, currency="EUR")
    token = paypal_gateway._access_token()
    for order, expected in ((yen, "15000"), (euro, "19.99")):
        raw = requests.get(
            f"{fake_paypal.base_url}/v2/checkout/orders/{order.reference}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        ).json()
        assert raw["purchase_units"][0]["amount"]["value"] == expected
    assert (yen.amount, yen.currency) == (15000, "JPY")
    # HUF has two ISO decimals but PayPal takes whole forints: 10.50 HUF cannot be charged exactly.
    with pytest.raises(GatewayRejected, match="HUF"):
        new_order(paypal_gateway, amount=1050, currency="HUF")


def test_unsupported_currency_is_refused(paypal_gateway):
    assert not paypal_gateway.supports_currency("KWD")
    assert paypal_gateway.supports_currency("eur")
    with pytest.raises(GatewayRejected, match="KWD") as caught:
        new_order(paypal_gateway, amount=1000, currency="KWD")
    assert caught.value.code == "currency_not_supported"


def test_wrong_credentials_are_rejected(fake_paypal):
    gateway = PayPalGateway(
        client_id="", client_secret="", webhook_id="x", api_base=fake_paypal.base_url, timeout=5
    )
    with pytest.raises(GatewayRejected, match="check the client id"):
        new_order(gateway)


def test_saved_methods_are_not_supported(paypal_gateway):
    assert paypal_gateway.create_customer(email="a@b.c", name="A", idempotency_key=key(), metadata={}) == ""
    with pytest.raises(GatewayRejected, match="Stripe"):
        paypal_gateway.charge_saved_method(
            amount=100,
            currency="EUR",
            customer="",
            payment_method="",
            idempotency_key=key(),
            description="",
            metadata={},
        )


# --- webhooks ------------------------------------------------------------------------------------------------


@pytest.fixture
def webhook_receiver():
    received: queue.Queue = queue.Queue()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.put((body, dict(self.headers.items())))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # A *.localhost name, as the dev launcher registers: the fake must connect to 127.0.0.1 with that Host.
    yield f"http://hooks.localhost:{server.server_address[1]}/webhooks/paypal/", received
    server.shutdown()
    server.server_close()


def next_event(received: queue.Queue, event_type: str, order_id: str) -> tuple[bytes, dict]:
    """The next event of this type naming this order, capture or refund id (the fake is shared by the worker's
    tests: events of orders changed just before this test's webhook was registered may still arrive). Events
    of one change are delivered concurrently, in any order: the others met on the way stay queued."""
    deadline = time.monotonic() + 15  # deliveries queue behind other tests' webhooks on the shared fake
    passed_over = []
    try:
        while time.monotonic() < deadline:
            body, headers = received.get(timeout=max(0.01, deadline - time.monotonic()))
            if json.loads(body)["event_type"] == event_type and order_id.encode() in body:
                return body, headers
            passed_over.append((body, headers))
    except queue.Empty:
        pass
    finally:
        for event in passed_over:
            received.put(event)
    raise AssertionError(f"no {event_type} webhook arrived")


def test_webhooks_sent_by_the_fake_verify_and_map(paypal_gateway, fake_paypal, webhook_receiver):
    url, received = webhook_receiver
    fake_paypal.register_webhook(url, TEST_WEBHOOK_ID, client_id=TEST_CLIENT_ID)
    captured = paid_order(paypal_gateway, fake_paypal)

    body, headers = next_event(received, "CHECKOUT.ORDER.APPROVED", captured.reference)
    assert headers["Host"] == url.split("/")[2]
    event = paypal_gateway.parse_webhook(body, headers)
    assert (event.object_kind, event.object_reference) == ("payment", captured.reference)

    body, headers = next_event(received, "PAYMENT.CAPTURE.COMPLETED", captured.reference)
    event = paypal_gateway.parse_webhook(body, headers)
    assert (event.type, event.object_kind, event.object_reference) == (
        "PAYMENT.CAPTURE.COMPLETED",
        "payment",
        captured.reference,
    )

    refund = paypal_gateway.refund(
        payment_reference=captured.reference,
        capture_reference=captured.capture_reference,
        amount=500,
        currency="EUR",
        idempotency_key=key(),
    )
    body, headers = next_event(received, "PAYMENT.CAPTURE.REFUNDED", refund.reference)
    event = paypal_gateway.parse_webhook(body, headers)
    assert (event.object_kind, event.object_reference) == ("refund", refund.reference)
    # As at PayPal, the refund names its capture through its "up" link only.
    fetched = paypal_gateway.fetch_refund(refund.reference)
    assert (fetched.capture_reference, fetched.amount) == (captured.capture_reference, 500)
    # Another PayPal app's orders are not sent to this app's webhook.
    stranger = PayPalGateway(
        "another-client", "another-secret", "WH-X", api_base=fake_paypal.base_url, timeout=5
    )
    strangers_order = new_order(stranger).reference
    fake_paypal.approve(strangers_order)
    time.sleep(WEBHOOK_SETTLE_SECONDS)
    while not received.empty():
        body, _headers = received.get()
        assert strangers_order.encode() not in body, "an event of another client's order was delivered"


def test_forged_or_misdirected_webhooks_are_invalid(paypal_gateway, fake_paypal):
    body = json.dumps(
        {"id": "WH-1", "event_type": "CHECKOUT.ORDER.APPROVED", "resource": {"id": "ORDER1"}}
    ).encode()
    headers = fake_paypal.sign(body, TEST_WEBHOOK_ID)
    assert paypal_gateway.parse_webhook(body, headers).object_reference == "ORDER1"

    tampered = body.replace(b"ORDER1", b"ORDER2")
    with pytest.raises(InvalidWebhook, match="did not verify"):
        paypal_gateway.parse_webhook(tampered, headers)
    with pytest.raises(InvalidWebhook, match="did not verify"):
        paypal_gateway.parse_webhook(body, {**headers, "PAYPAL-TRANSMISSION-SIG": "Zm9yZ2Vk"})
    other_account = PayPalGateway(
        TEST_CLIENT_ID, TEST_CLIENT_SECRET, "WH-SOMEONE-ELSE", api_base=fake_paypal.base_url, timeout=5
    )
    with pytest.raises(InvalidWebhook, match="did not verify"):
        other_account.parse_webhook(body, headers)
    without = {name: value for name, value in headers.items() if name != "PAYPAL-TRANSMISSION-SIG"}
    with pytest.raises(InvalidWebhook, match="PAYPAL-TRANSMISSION-SIG"):
        paypal_gateway.parse_webhook(body, without)


# --- outages -------------------------------------------------------------------------------------------------


def test_outage_down_is_unavailable(paypal_gateway, fake_paypal):
    order = new_order(paypal_gateway)  # token fetched while up
    fake_paypal.outage("down")
    with pytest.raises(GatewayUnavailable, match="503"):
        paypal_gateway.fetch_payment(order.reference)
    fresh = PayPalGateway(TEST_CLIENT_ID, TEST_CLIENT_SECRET, TEST_WEBHOOK_ID, api_base=fake_paypal.base_url)
    with pytest.raises(GatewayUnavailable):  # the token endpoint is down too
        new_order(fresh)


def test_slow_beyond_the_timeout_is_unavailable(fake_paypal):
    gateway = PayPalGateway(
        TEST_CLIENT_ID, TEST_CLIENT_SECRET, TEST_WEBHOOK_ID, api_base=fake_paypal.base_url, timeout=0.5
    )
    order = new_order(gateway)
    fake_paypal.outage("slow", seconds=1.5)
    try:
        started = time.monotonic()
        with pytest.raises(GatewayUnavailable, match="timed out"):
            gateway.fetch_payment(order.reference)
        assert time.monotonic() - started < 1.4
    finally:
        fake_paypal.outage("up")


def test_connection_refused_is_unavailable():
    from tourops.fakes import free_port

    gateway = PayPalGateway("id", "secret", "wh", api_base=f"http://127.0.0.1:{free_port()}", timeout=1)
    with pytest.raises(GatewayUnavailable):
        gateway.fetch_payment("NOPE")


# --- the fake itself: approval page and PayPal's amount rules ------------------------------------------------


def test_approval_page_approves_or_cancels_with_redirects(paypal_gateway, fake_paypal):
    import re

    import requests

    order = new_order(paypal_gateway)
    page = requests.get(order.approve_url, timeout=5)
    assert page.status_code == 200 and "Approve payment" in page.text and "<script" not in page.text
    action = re.search(r'<form method="post" action="([^"]+/approve)"', page.text).group(1)
    approved = requests.post(f"{fake_paypal.base_url}{action}", data={"funding": "ok"}, allow_redirects=False)
    assert approved.status_code == 303
    assert approved.headers["Location"].startswith(f"https://t.example/back?token={order.reference}&PayerID=")
    assert paypal_gateway.capture(order.reference, idempotency_key=key()).status == SUCCEEDED

    other = new_order(paypal_gateway)
    cancelled = requests.post(
        f"{fake_paypal.base_url}/checkoutnow/{other.reference}/cancel", allow_redirects=False, timeout=5
    )
    assert cancelled.headers["Location"] == f"https://t.example/cancel?token={other.reference}"
    assert paypal_gateway.fetch_payment(other.reference).requires_action


@pytest.mark.parametrize(
    ("currency", "value", "issue"),
    [
        ("JPY", "1000.00", "DECIMAL_PRECISION"),
        ("EUR", "10.001", "DECIMAL_PRECISION"),
        ("KWD", "1.000", "CURRENCY_NOT_SUPPORTED"),
    ],
)
def test_fake_applies_paypal_amount_rules(paypal_gateway, fake_paypal, currency, value, issue):
    import requests

    response = requests.post(
        f"{fake_paypal.base_url}/v2/checkout/orders",
        json={
            "intent": "CAPTURE",
            "purchase_units": [{"amount": {"currency_code": currency, "value": value}}],
        },
        headers={"Authorization": f"Bearer {paypal_gateway._access_token()}"},
        timeout=5,
    )
    assert response.status_code == 422
    assert response.json()["name"] == "UNPROCESSABLE_ENTITY"
    assert response.json()["details"][0]["issue"] == issue


def test_a_refund_carries_our_reference_back(paypal_gateway, fake_paypal):
    captured = paid_order(paypal_gateway, fake_paypal)
    ours = str(uuid.uuid4())
    refund = paypal_gateway.refund(
        payment_reference=captured.reference,
        capture_reference=captured.capture_reference,
        amount=700,
        currency="EUR",
        idempotency_key=key(),
        client_reference=ours,
    )
    assert refund.client_reference == ours  # sent as the refund's custom_id
    assert paypal_gateway.fetch_refund(refund.reference).client_reference == ours
