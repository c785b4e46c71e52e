"""Fixtures for the local fake PayPal (tourops.fakes.paypal): one server per pytest-xdist worker.

- ``fake_paypal`` (session): starts the server, points ``settings.PAYPAL_API_BASE`` (and the environment variable,
  for Celery workers started by tests) at it; yields a ``FakePayPal``.
- ``paypal_gateway`` (function): a ``PayPalGateway`` with test credentials against it; the outage is reset
  afterwards.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

import pytest
import requests

from tests.fake_servers import serving

TEST_CLIENT_ID = "test-tourops-client"
TEST_CLIENT_SECRET = "test-tourops-secret"
TEST_WEBHOOK_ID = "WH-TOUROPS-TEST"


@dataclass
class FakePayPal:
    base_url: str
    process: subprocess.Popen

    def _post(self, path: str, data: dict) -> dict:
        response = requests.post(f"{self.base_url}{path}", json=data, timeout=5)
        assert response.status_code < 400, f"{path}: HTTP {response.status_code} {response.text}"
        return response.json()

    def outage(self, mode: str, seconds: float = 0) -> None:
        """``up``, ``down`` (every API call → HTTP 503) or ``slow`` (each API call waits ``seconds`` first)."""
        self._post("/_fake/outage", {"mode": mode, "seconds": seconds})

    def approve(self, order_id: str, decline: bool = False) -> str:
        """What the payer does on the approval page; ``decline``: their funding source fails at capture.
        Returns the payer id."""
        return self._post(f"/_fake/orders/{order_id}/approve", {"decline": decline})["payer_id"]

    def register_webhook(self, url: str, webhook_id: str, client_id: str = "") -> None:
        """Deliver events to ``url`` (about 0.2 s after each), signed for ``webhook_id``: all of them, or with
        ``client_id`` only those of that client's orders."""
        self._post("/_fake/webhooks", {"url": url, "webhook_id": webhook_id, "client_id": client_id})

    def sign(self, body: bytes, webhook_id: str) -> dict[str, str]:
        """The transmission headers the fake would send ``body`` with for ``webhook_id``."""
        return self._post("/_fake/webhooks/sign", {"body": body.decode(), "webhook_id": webhook_id})


@pytest.fixture(scope="session")
def fake_paypal():
    with serving("tourops.fakes.paypal", lambda base_url: {"PAYPAL_API_BASE": base_url}) as (
        process,
        base_url,
    ):
        yield FakePayPal(base_url=base_url, process=process)


@pytest.fixture
def paypal_gateway(fake_paypal):
    from payments.gateways.paypal import PayPalGateway

    gateway = PayPalGateway(
        client_id=TEST_CLIENT_ID,
        client_secret=TEST_CLIENT_SECRET,
        webhook_id=TEST_WEBHOOK_ID,
        api_base=fake_paypal.base_url,
        timeout=5,
    )
    yield gateway
    fake_paypal.outage("up")
