"""Each demo tenant's gateway accounts at the local fake gateways, its webhook endpoints there, and its payment
terms."""

from __future__ import annotations

import json
import urllib.request

from django.conf import settings

from demo.data import (
    DEMO_PAYMENT_TERMS,
)
from payments.models import GatewayAccount, PaymentTerms
from tenants.models import Tenant


def demo_gateway_keys(slug: str) -> dict[str, str]:
    """Test credentials of a demo tenant's gateway accounts at the local fakes (the launcher registers the
    webhooks with the same secrets)."""
    return {
        "stripe_publishable": f"pk_test_demo_{slug}",
        "stripe_secret": f"sk_test_demo_{slug}",
        "stripe_webhook_secret": f"whsec_demo_{slug}",
        "paypal_client_id": f"demo-{slug}-client",
        "paypal_client_secret": f"demo-{slug}-secret",
        "paypal_webhook_id": f"WH-DEMO-{slug.upper()}",
    }


def seed_payments(tenant: Tenant, port: str) -> None:
    """Stripe and PayPal test accounts (at the local fakes) and default payment terms, once per tenant; the
    tenant's webhook endpoints registered at the fakes, as one would in the gateways' dashboards."""

    _register_fake_webhooks(tenant.slug, port)
    keys = demo_gateway_keys(tenant.slug)
    if not GatewayAccount.objects.exists():
        GatewayAccount.objects.create(
            provider=GatewayAccount.Provider.STRIPE,
            public_key=keys["stripe_publishable"],
            secret_key=keys["stripe_secret"],
            webhook_secret=keys["stripe_webhook_secret"],
        )
        GatewayAccount.objects.create(
            provider=GatewayAccount.Provider.PAYPAL,
            public_key=keys["paypal_client_id"],
            secret_key=keys["paypal_client_secret"],
            webhook_secret=keys["paypal_webhook_id"],
        )
    terms = DEMO_PAYMENT_TERMS.get(tenant.slug)
    if terms and not PaymentTerms.objects.exists():
        PaymentTerms.objects.create(is_default=True, retry_days=[1, 3, 7], **terms)


def _register_fake_webhooks(slug: str, port: str) -> None:
    if not (settings.STRIPE_API_BASE or "").startswith("http://127.0.0.1"):
        return  # real gateways: their dashboards hold the endpoints
    keys = demo_gateway_keys(slug)
    base = f"http://{slug}.localhost:{port}/payments/webhooks"
    _post_json(
        f"{settings.STRIPE_API_BASE}/_config/webhooks/{slug}",
        {"url": f"{base}/stripe/", "secret": keys["stripe_webhook_secret"]},
    )
    if settings.PAYPAL_API_BASE:
        _post_json(
            f"{settings.PAYPAL_API_BASE}/_fake/webhooks",
            {
                "url": f"{base}/paypal/",
                "webhook_id": keys["paypal_webhook_id"],
                "client_id": keys["paypal_client_id"],
            },
        )


def _post_json(url: str, payload: dict) -> None:
    request = urllib.request.Request(  # noqa: S310 - the local fake gateways
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5):  # noqa: S310
        pass
