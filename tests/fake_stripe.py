"""Fixtures for the local fake Stripe (tourops.fakes.stripe): one server per pytest-xdist worker.

- ``fake_stripe`` (session): starts the server, points ``settings.STRIPE_API_BASE`` / ``STRIPE_JS_URL`` (and the
  same environment variables, for Celery workers started by tests) at it; yields a ``FakeStripe``.
- ``stripe_gateway`` (function): a ``StripeGateway`` with test keys against it; the outage is reset afterwards.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

import pytest
import requests

from tests.fake_servers import serving

TEST_SECRET_KEY = "sk_test_tourops_fake"
TEST_PUBLISHABLE_KEY = "pk_test_tourops_fake"
TEST_WEBHOOK_SECRET = "whsec_tourops_fake"


@dataclass
class FakeStripe:
    base_url: str
    process: subprocess.Popen

    @property
    def js_url(self) -> str:
        return f"{self.base_url}/js.stripe.com/v3/"

    def outage(self, mode: str, seconds: float = 0) -> None:
        """``up``, ``down`` (every /v1/ call → HTTP 500) or ``slow`` (each /v1/ call waits ``seconds`` first)."""
        response = requests.post(
            f"{self.base_url}/_fake/outage", json={"mode": mode, "seconds": seconds}, timeout=5
        )
        response.raise_for_status()

    def register_webhook(self, name: str, url: str, secret: str, events: list[str] | None = None) -> None:
        """Deliver events (all, or only ``events``) to ``url``, signed with ``secret``, about 1 s after each."""
        data: dict = {"url": url, "secret": secret}
        if events is not None:
            data["events"] = events
        response = requests.post(f"{self.base_url}/_config/webhooks/{name}", json=data, timeout=5)
        response.raise_for_status()

    def browser_post(self, path: str, data: dict) -> requests.Response:
        """A call the page's Stripe.js makes: publishable key, no secret key."""
        return requests.post(f"{self.base_url}{path}", data={**data, "key": TEST_PUBLISHABLE_KEY}, timeout=5)

    def add_card(self, number: str) -> str:
        """A card PaymentMethod made from the page (as the Payment Element does); returns its id."""
        response = self.browser_post(
            "/v1/payment_methods",
            {
                "type": "card",
                "card[number]": number,
                "card[exp_month]": "12",
                "card[exp_year]": "2034",
                "card[cvc]": "123",
                "billing_details[address][postal_code]": "10115",
            },
        )
        assert response.status_code == 200, response.text
        return response.json()["id"]

    def attach_card(self, number: str, customer: str) -> str:
        """A card saved on ``customer`` (as a SetupIntent would), for off-session charges; returns its id."""
        payment_method = self.add_card(number)
        attached = requests.post(
            f"{self.base_url}/v1/payment_methods/{payment_method}/attach",
            data={"customer": customer},
            auth=(TEST_SECRET_KEY, ""),
            timeout=5,
        )
        assert attached.status_code == 200, attached.text
        return payment_method

    def confirm(self, client_secret: str, number: str) -> requests.Response:
        """What stripe.confirmPayment does in the page: a card PaymentMethod, then confirm with the client secret."""
        payment_intent = client_secret.split("_secret_")[0]
        return self.browser_post(
            f"/v1/payment_intents/{payment_intent}/confirm",
            {"payment_method": self.add_card(number), "client_secret": client_secret},
        )

    def pay(self, client_secret: str, number: str) -> dict:
        return self.confirm(client_secret, number).json()

    def authenticate(self, payment_intent: str, client_secret: str, *, success: bool) -> dict:
        """Complete or fail 3-D Secure, as the fake Stripe.js dialog does in the browser."""
        response = requests.post(
            f"{self.base_url}/v1/payment_intents/{payment_intent}/_authenticate",
            data={
                "key": TEST_PUBLISHABLE_KEY,
                "client_secret": client_secret,
                "success": str(success).lower(),
            },
            timeout=5,
        )
        return response.json()


@pytest.fixture(scope="session")
def fake_stripe():
    def point_at(base_url: str) -> dict[str, str]:
        return {"STRIPE_API_BASE": base_url, "STRIPE_JS_URL": f"{base_url}/js.stripe.com/v3/"}

    with serving("tourops.fakes.stripe", point_at) as (process, base_url):
        yield FakeStripe(base_url=base_url, process=process)


@pytest.fixture
def stripe_gateway(fake_stripe):
    from payments.gateways.stripe import StripeGateway

    gateway = StripeGateway(
        TEST_SECRET_KEY, TEST_PUBLISHABLE_KEY, TEST_WEBHOOK_SECRET, api_base=fake_stripe.base_url, timeout=5
    )
    yield gateway
    fake_stripe.outage("up")
