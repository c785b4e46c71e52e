"""On a phone-sized browser, a traveller finds a tour, books it, pays the deposit by card on the checkout page
(Stripe's Payment Element, served by the local fake Stripe), and the confirmation page follows the booking until
the outbox consumers confirm it. Prints the time from "Pay" to "confirmed"."""

from __future__ import annotations

import re
import time

import pytest
from django.urls import reverse

from bookings import services
from bookings.links import manage_token
from bookings.models import Booking
from payments.models import GatewayAccount, Payment, WebhookEvent
from tenants.context import tenant_context
from tests.bookings.world import LEAD, World
from tests.payments.gateway_accounts import STRIPE_KEYS
from tests.payments.helpers import TOTAL, sell_with_a_deposit
from tours.models import Tour


def _booking_with_deposit_terms(world: World) -> Booking:
    sell_with_a_deposit(world, paypal=False)
    with tenant_context(world.tenant):
        hold = world.hold("e2e", {"adult": 2})
        return services.create_booking(holds=[hold], lead=LEAD, channel="retail", language="en")


def _fill_card(page, number: str) -> None:
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry date (MM / YY)").fill("12 / 34")
    page.get_by_label("Security code").fill("123")
    postal = page.get_by_label("Postal code")
    if postal.count():
        postal.fill("1000")


@pytest.mark.django_db(transaction=True)
def test_a_traveller_books_on_a_phone_pays_the_deposit_by_card_and_sees_the_booking_confirmed(
    live_server, page, shots, worker, fake_stripe
):
    world = World(slug="paye2e", host="paye2e.localhost")
    sell_with_a_deposit(world, paypal=False)
    with tenant_context(world.tenant):
        Tour.objects.filter(pk=world.tour.pk).update(title="Lisbon Old Town Walk", inclusions="Guide")
    site = f"http://paye2e.localhost:{live_server.url.rsplit(':', 1)[1]}"
    # The fake delivers Stripe's events to the tenant's endpoint, signed with its secret, as Stripe would.
    fake_stripe.register_webhook(
        "paye2e",
        f"{site}/payments/webhooks/stripe/",
        STRIPE_KEYS["webhook_secret"],
        events=["payment_intent.succeeded"],
    )

    page.goto(f"{site}/tours/")
    shots(page, "tours")
    page.get_by_role("link", name="Lisbon Old Town Walk").click()
    shots(page, "tour")
    page.get_by_role("link", name=re.compile(r"^Book")).first.click()
    page.wait_for_load_state()
    page.get_by_label("Adult").select_option("2")
    page.locator("#quote").get_by_text("€200.00").first.wait_for()  # priced as the choice changes
    page.get_by_label("Full name").fill("Ana Lima")
    page.get_by_label("Email address").fill("ana@example.com")
    page.get_by_label("I accept the booking terms").check()
    shots(page, "booking_form")
    page.get_by_role("button", name="Continue to payment").click()
    page.wait_for_url(re.compile(r"/booking/[^/]+/pay/$"))
    page.get_by_label("Card number").wait_for()
    shots(page, "checkout")
    assert "€60.00" in page.get_by_text("Due now:").inner_text()  # the 30 % deposit of €200.00
    _fill_card(page, "4242424242424242")
    shots(page, "card_filled")

    started = time.monotonic()
    page.get_by_role("button", name="Pay €60.00").click()
    page.wait_for_url("**/pay/*/")
    shots(page, "payment_received")
    page.locator("#booking-status-label").filter(has_text="Confirmed").wait_for(timeout=30_000)
    pay_to_confirmed = time.monotonic() - started
    shots(page, "confirmed")
    print(f"\npay_to_confirmed_seconds={pay_to_confirmed:.2f}")

    with tenant_context(world.tenant):
        booking = Booking.objects.get()
        assert (booking.status, booking.paid, booking.balance) == ("confirmed", 6000, TOTAL - 6000)
        payment = Payment.objects.get(booking=booking, provider=GatewayAccount.Provider.STRIPE)
        assert (payment.status, payment.amount) == ("succeeded", 6000)
        # The card is kept for the balance, charged off-session when it falls due.
        assert booking.schedule.payment_method_reference.startswith("pm_")
    deadline = time.monotonic() + 20
    with tenant_context(world.tenant):
        while not WebhookEvent.objects.filter(
            event_type="payment_intent.succeeded", processed_at__isnull=False
        ).exists():
            assert time.monotonic() < deadline, "the signed webhook never arrived"
            time.sleep(0.2)
        assert WebhookEvent.objects.get().outcome == "payment succeeded"
    # The manage page shows the balance still to pay and the invoice once the worker has made it.
    page.get_by_role("link", name="View your booking").click()
    page.get_by_text("Balance due").wait_for()
    shots(page, "manage_booking")


@pytest.mark.django_db(transaction=True)
def test_a_declined_card_shows_why_and_changes_nothing(live_server, page, shots, fake_stripe):
    world = World(slug="decline2e", host="decline2e.localhost")
    booking = _booking_with_deposit_terms(world)
    port = live_server.url.rsplit(":", 1)[1]
    with tenant_context(world.tenant):
        checkout = f"http://decline2e.localhost:{port}" + reverse(
            "retail:checkout", kwargs={"token": manage_token(booking)}
        )

    page.goto(checkout)
    _fill_card(page, "4000000000000002")
    page.get_by_role("button", name="Pay €60.00").click()
    alert = page.locator("#payment-message")
    alert.wait_for(state="visible")
    shots(page, "declined")
    assert alert.inner_text()
    with tenant_context(world.tenant):
        fresh = Booking.objects.get(pk=booking.pk)
        assert (fresh.status, fresh.paid) == ("on_hold", 0)


@pytest.mark.django_db(transaction=True)
def test_a_traveller_pays_with_paypal_approving_on_paypals_page(
    live_server, page, shots, worker, fake_paypal
):
    world = World(slug="paypale2e", host="paypale2e.localhost")
    sell_with_a_deposit(world, stripe=False, paypal=True)
    with tenant_context(world.tenant):
        booking = services.create_booking(
            holds=[world.hold("pp", {"adult": 2})], lead=LEAD, channel="retail", language="en"
        )
        checkout = reverse("retail:checkout", kwargs={"token": manage_token(booking)})
    page.goto(f"http://paypale2e.localhost:{live_server.url.rsplit(':', 1)[1]}{checkout}")
    shots(page, "checkout")
    page.get_by_role(
        "button", name="Pay €60.00 with PayPal"
    ).click()  # a form POST: CSRF and Origin must pass
    page.get_by_role("button", name="Approve payment").click()
    shots(page, "back_from_paypal")
    page.locator("#booking-status-label").filter(has_text="Confirmed").wait_for(timeout=30_000)
    shots(page, "confirmed")
    with tenant_context(world.tenant):
        payment = Payment.objects.get(booking=booking)
        assert (payment.provider, payment.status, payment.amount) == ("paypal", "succeeded", 6000)
