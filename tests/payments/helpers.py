"""Bookings that take money: a retail booking on hold (2 adults, 200.00 EUR) from the bookings World, Stripe's
test cards, a tenant with 30 % deposit terms and accounts at the local gateways, and signed Stripe webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from decimal import Decimal

from bookings import services
from bookings.models import Booking
from payments.models import Payment, PaymentSchedule, PaymentTerms
from payments.services import online
from tenants.context import tenant_context
from tenants.roles import Role
from tests.bookings.world import LEAD, World
from tests.factories import make_member
from tests.payments.gateway_accounts import STRIPE_KEYS, add_gateway_accounts

TOTAL = 20000  # 2 adults at 100.00 EUR, retail
DEPOSIT = TOTAL * 30 // 100

VISA = "4242424242424242"
DECLINED = "4000000000000002"
THREE_D_SECURE = "4000002760003184"
DECLINED_OFF_SESSION = "4000000000000341"  # saves fine, every later charge is declined


def retail_booking(world: World, key: str, adults: int = 2) -> Booking:
    """On hold, nothing paid (call inside the tenant's context)."""
    hold = world.hold(key, {"adult": adults})
    return services.create_booking(holds=[hold], lead=LEAD, channel="retail", language="en")


def clerk(world: World):
    return make_member(world.tenant, Role.FINANCE)


def sell_with_a_deposit(world: World, *, stripe: bool = True, paypal: bool = True) -> None:
    """The tenant's bookings pay a 30 % deposit (balance 14 days before, retries after 1 and 3 days) through its
    accounts at the local Stripe and PayPal (the ``fake_stripe`` / ``fake_paypal`` fixtures must be on)."""
    with tenant_context(world.tenant):
        PaymentTerms.objects.create(
            name="30% deposit",
            kind="deposit",
            deposit_percent=Decimal(30),
            balance_days_before=14,
            retry_days=[1, 3],
            is_default=True,
        )
        add_gateway_accounts(stripe=stripe, paypal=paypal)


def card_world() -> World:
    """A World whose bookings pay a deposit by card or PayPal (``sell_with_a_deposit``)."""
    world = World()
    sell_with_a_deposit(world)
    return world


def confirmed_with_saved_card(world: World, fake_stripe, later_card: str = VISA, key: str = "a") -> Booking:
    """Deposit paid by card (saved for the balance); ``later_card`` is what the saved card does by then."""
    booking = retail_booking(world, key)
    attempt = online.start_checkout(booking, Payment.Provider.STRIPE)
    fake_stripe.pay(attempt.client_secret, VISA)
    online.sync_payment(Payment.objects.get(pk=attempt.payment_id))
    if later_card != VISA:
        schedule = PaymentSchedule.objects.get(booking=booking)
        schedule.payment_method_reference = fake_stripe.attach_card(later_card, schedule.customer_reference)
        schedule.save(update_fields=["payment_method_reference"])
    return services.confirm_booking(Booking.objects.get(pk=booking.pk))


def stripe_webhook(
    event_type: str, obj: dict, *, event_id: str, secret: str = STRIPE_KEYS["webhook_secret"], age: int = 0
) -> tuple[bytes, dict[str, str]]:
    """A Stripe event body and its ``Stripe-Signature`` header (``age`` seconds old)."""
    body = json.dumps(
        {"id": event_id, "object": "event", "type": event_type, "data": {"object": obj}}
    ).encode()
    timestamp = int(time.time()) - age
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Stripe-Signature": f"t={timestamp},v1={signature}"}
