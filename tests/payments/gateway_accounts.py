"""A tenant's gateway accounts at the local fakes (call inside the tenant's context; the `fake_stripe` /
`fake_paypal` fixtures point the settings at the fakes)."""

from __future__ import annotations

from payments.models import GatewayAccount

STRIPE_KEYS = {
    "public_key": "pk_test_tourops",
    "secret_key": "sk_test_tourops",
    "webhook_secret": "whsec_tourops",
}
PAYPAL_KEYS = {"public_key": "tourops-client", "secret_key": "tourops-secret", "webhook_secret": "WH-TOUROPS"}


def add_gateway_accounts(*, stripe: bool = True, paypal: bool = True) -> list[GatewayAccount]:
    accounts = []
    if stripe:
        accounts.append(GatewayAccount.objects.create(provider=GatewayAccount.Provider.STRIPE, **STRIPE_KEYS))
    if paypal:
        accounts.append(GatewayAccount.objects.create(provider=GatewayAccount.Provider.PAYPAL, **PAYPAL_KEYS))
    return accounts
