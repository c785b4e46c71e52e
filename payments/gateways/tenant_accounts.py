"""The current tenant's gateways, built from its ``GatewayAccount`` rows (read inside the tenant's context)."""

from __future__ import annotations

from core.errors import ConflictError
from payments.gateways.base import PaymentGateway
from payments.models import GatewayAccount

Provider = GatewayAccount.Provider


class GatewayNotConfigured(ConflictError):
    def __init__(self, provider: str):
        label = Provider(provider).label if provider in Provider.values else provider
        super().__init__(
            f"{label} is not set up for this business: add its keys under Payments → Gateway accounts.",
            code="gateway_not_configured",
        )


def build(account: GatewayAccount) -> PaymentGateway:
    # Each gateway's module is imported when it is first needed: their SDKs take a while to load, and a tenant
    # may use only one of them.
    if account.provider == Provider.STRIPE:
        from payments.gateways.stripe import StripeGateway

        return StripeGateway(
            secret_key=account.secret_key,
            publishable_key=account.public_key,
            webhook_secret=account.webhook_secret or "",
        )
    from payments.gateways.paypal import PayPalGateway

    return PayPalGateway(
        client_id=account.public_key,
        client_secret=account.secret_key,
        webhook_id=account.webhook_secret or "",
        live=account.live,
    )


def configured_providers() -> list[str]:
    """Active gateways of the current tenant, Stripe (the primary) first."""
    providers = set(GatewayAccount.objects.filter(is_active=True).values_list("provider", flat=True))
    return [provider for provider in (Provider.STRIPE, Provider.PAYPAL) if provider in providers]


def gateway_for(provider: str) -> PaymentGateway:
    account = GatewayAccount.objects.filter(provider=provider, is_active=True).first()
    if account is None:
        raise GatewayNotConfigured(provider)
    return build(account)
