"""The bookings consumer of ``payment.processed``: a booking on hold is confirmed once nothing is due now, once;
part payments, cancelled bookings and bookings confirmed meanwhile are left as they are."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
from django.utils import timezone

from bookings import services
from bookings.models import Booking
from events import tasks
from events.models import DeadLetter, OutboxEvent
from events.registry import consumers_of
from inventory.models import Hold
from payments import handlers as handlers
from payments.models import Refund
from payments.services.offline import record_offline_payment
from tenants.context import tenant_context
from tests.bookings.world import World
from tests.payments.helpers import TOTAL, clerk, retail_booking

CONSUMER = "bookings.confirm_when_paid"


def _payment_events(booking) -> list[OutboxEvent]:
    return list(
        OutboxEvent.objects.filter(aggregate_id=str(booking.pk), name="payment.processed").order_by(
            "created_at"
        )
    )


def _confirmations(booking) -> int:
    return OutboxEvent.objects.filter(aggregate_id=str(booking.pk), name="booking.confirmed").count()


def test_the_consumer_is_registered_at_start_up_like_every_bookings_consumer():
    # In a fresh process: here the import at the top of this module would register it anyway.
    program = "import django; django.setup(); from events.registry import consumers_of; "
    program += "print(consumers_of('payment.processed'))"
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "tourops.test_settings"}
    result = subprocess.run(  # noqa: S603 - our own interpreter and program
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=True,
    )
    assert CONSUMER in result.stdout
    assert CONSUMER in consumers_of("payment.processed")


@pytest.mark.django_db
def test_a_booking_paid_in_full_is_confirmed_once_even_when_the_event_is_handled_twice():
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        booking = retail_booking(world, "a")
        record_offline_payment(booking, amount=TOTAL, method="bank_transfer", reference="BANK-1", actor=staff)
        (event,) = _payment_events(booking)

        assert tasks.handle(str(event.pk), CONSUMER) == "handled"
        assert tasks.handle(str(event.pk), CONSUMER) == "already handled"
        handlers.confirm_when_paid(event)  # a redelivery that slipped past the claim changes nothing either

        booking.refresh_from_db()
        assert booking.status == "confirmed" and booking.confirmed_at is not None
        assert booking.status_history.last().reason == "Paid"
        assert _confirmations(booking) == 1
        assert world.fresh_departure().sold == 2


@pytest.mark.django_db
def test_a_part_payment_leaves_the_booking_on_hold_and_the_last_one_confirms_it():
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        booking = retail_booking(world, "a")
        record_offline_payment(booking, amount=5000, method="cash", reference="", actor=staff)
        handlers.confirm_when_paid(_payment_events(booking)[0])
        assert Booking.objects.get(pk=booking.pk).status == "on_hold"

        record_offline_payment(booking, amount=TOTAL - 5000, method="cash", reference="", actor=staff)
        first, last = _payment_events(booking)
        handlers.confirm_when_paid(last)
        handlers.confirm_when_paid(first)  # events are not ordered: the older one arriving late is harmless

        assert Booking.objects.get(pk=booking.pk).status == "confirmed"
        assert _confirmations(booking) == 1


@pytest.mark.django_db
def test_money_for_a_booking_cancelled_meanwhile_does_not_revive_it(caplog):
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        booking = retail_booking(world, "a")
        record_offline_payment(booking, amount=TOTAL, method="bank_transfer", reference="BANK-9", actor=staff)
        services.cancel_booking(Booking.objects.get(pk=booking.pk), reason="changed plans")
        (event,) = _payment_events(booking)

        with caplog.at_level(logging.WARNING, logger="payments.handlers"):
            handlers.confirm_when_paid(event)

        booking.refresh_from_db()
        assert booking.status == "cancelled" and _confirmations(booking) == 0
        # The cancellation itself gives the money back (100 % tier): nothing left over for staff to chase.
        assert [(r.kind, r.amount) for r in Refund.objects.filter(booking=booking)] == [
            ("cancellation", TOTAL)
        ]
        assert booking.reference not in caplog.text
        assert world.fresh_departure().sold == 0


@pytest.mark.django_db
def test_a_paid_booking_whose_seats_lapsed_is_not_retried_forever(caplog):
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        booking = retail_booking(world, "a")
        record_offline_payment(booking, amount=TOTAL, method="cash", reference="", actor=staff)
        Hold.objects.filter(booking_item__booking=booking).update(expires_at=timezone.now())
        (event,) = _payment_events(booking)

        with caplog.at_level(logging.ERROR, logger="payments.handlers"):
            assert tasks.handle(str(event.pk), CONSUMER) == "handled"

        assert Booking.objects.get(pk=booking.pk).status == "on_hold"  # the expiry sweep takes it from here
        assert "could not be confirmed" in caplog.text
        assert not DeadLetter.objects.exists()
