"""Cancellation terms per the tour's tiers, and the staff override of the refundable amount (audited)."""

from __future__ import annotations

import datetime as dt

import pytest

from bookings import services
from bookings.models import Booking
from core.errors import DomainError
from events.models import OutboxEvent
from inventory.services import place_hold
from tenants.context import tenant_context
from tenants.models import AuditEvent
from tests.bookings.world import LEAD, World
from tests.catalogue import make_departure
from tests.factories import make_member

pytestmark = pytest.mark.django_db


def _days_before_start(world, days: float) -> dt.datetime:
    return world.departure.starts_at - dt.timedelta(days=days)


def _paid(booking: Booking, amount: int) -> Booking:
    Booking.objects.filter(pk=booking.pk).update(paid=amount)
    return Booking.objects.get(pk=booking.pk)


@pytest.mark.parametrize(
    ("days", "percent", "charge", "days_before"),
    [
        (20, 100, 0, 20),
        (14, 100, 0, 14),  # a tier applies from its day on
        (13.9, 50, 8000, 13),
        (2, 50, 8000, 2),
        (1.5, 0, 16000, 1),
        (-0.5, 0, 16000, -1),  # after the start: nothing back
    ],
)
def test_the_tiers_decide_what_cancelling_costs(days, percent, charge, days_before):
    world = World()
    with tenant_context(world.tenant):
        booking = _paid(world.confirmed_booking("a", adults=2), 16000)  # 2 × 80.00 trade

        terms = services.cancellation_terms(booking, at=_days_before_start(world, days))

    assert terms == services.CancellationTerms(
        refund_percent=percent,
        charge=charge,
        credit=16000 - charge,
        refundable=16000 - charge,
        days_before=days_before,
    )


def test_a_booking_not_yet_confirmed_costs_nothing_to_cancel():
    world = World()
    with tenant_context(world.tenant):
        booking = _paid(world.trade_booking("a", 2), 3000)
        terms = services.cancellation_terms(booking, at=_days_before_start(world, 1))
    assert terms == services.CancellationTerms(100, 0, 16000, 3000, None)


@pytest.mark.parametrize(("paid", "refundable"), [(0, 0), (5000, 0), (8000, 0), (10000, 2000)])
def test_only_money_paid_beyond_the_charge_is_refundable(paid, refundable):
    world = World()
    with tenant_context(world.tenant):
        booking = _paid(world.confirmed_booking("a", adults=2), paid)
        terms = services.cancellation_terms(booking, at=_days_before_start(world, 5))
    assert (terms.charge, terms.credit, terms.refundable) == (8000, 8000, refundable)


def test_the_strictest_item_decides():
    world = World()
    with tenant_context(world.tenant):
        soon = make_departure(
            world.option, capacity=10, starts_at=world.departure.starts_at - dt.timedelta(days=20)
        )
        holds = [
            world.hold("far", {"adult": 1}, agency=world.agency),
            place_hold(soon, {"adult": 1}, "trade", "soon", agency=world.agency),
        ]
        booking = services.create_booking(
            holds=holds, lead=LEAD, channel="trade", language="en", agency=world.agency, on_account=True
        )
        booking = services.confirm_booking(booking)

        # 5 days before the near departure (50 %) is 25 before the far one (100 %): the near one decides.
        terms = services.cancellation_terms(booking, at=soon.starts_at - dt.timedelta(days=5))

    assert (terms.refund_percent, terms.days_before, terms.charge) == (50, 5, 8000)


def test_amounts_stay_whole_minor_units_in_a_currency_without_decimals():
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("a", adults=2)
        Booking.objects.filter(pk=booking.pk).update(currency="JPY", total=1001, paid=1001)
        booking = Booking.objects.get(pk=booking.pk)

        terms = services.cancellation_terms(booking, at=_days_before_start(world, 5))

    # Half of ¥1,001: the waived half rounds down to whole yen; the operator keeps the odd yen.
    assert (terms.credit, terms.charge, terms.refundable) == (500, 501, 500)
    assert all(isinstance(value, int) for value in (terms.credit, terms.charge, terms.refundable))


def test_cancelling_announces_the_policys_terms():
    world = World()
    with tenant_context(world.tenant):
        booking = _paid(world.confirmed_booking("a", adults=2), 16000)
        cancelled = services.cancel_booking(booking, reason="plans changed")
        event = OutboxEvent.objects.get(aggregate_id=str(booking.pk), name="booking.cancelled")
        assert cancelled.status == Booking.Status.CANCELLED
        assert not AuditEvent.objects.filter(target_id=str(booking.pk)).exists()
    # 30 days ahead: the 14-day tier refunds everything.
    assert event.payload == {
        "reference": booking.reference,
        "status": "cancelled",
        "refund_percent": 100,
        "charge": 0,
        "credit": 16000,
        "refundable": 16000,
        "policy_refundable": 16000,
    }


def test_staff_override_the_refundable_amount_with_a_reason_and_it_is_audited():
    world = World()
    member = make_member(world.tenant, "finance")
    with tenant_context(world.tenant):
        booking = _paid(world.confirmed_booking("a", adults=2), 16000)

        services.cancel_booking(
            booking, actor=member, reason="goodwill: storm warning", refundable_override=12000
        )

        event = OutboxEvent.objects.get(aggregate_id=str(booking.pk), name="booking.cancelled")
        audit = AuditEvent.objects.get(target_id=str(booking.pk))
        history = booking.status_history.get(to_status="cancelled")
    assert (event.payload["refundable"], event.payload["policy_refundable"]) == (12000, 16000)
    # The operator keeps 4,000 of the 16,000 paid: that is the charge, and the invoice is credited the rest.
    assert (event.payload["charge"], event.payload["credit"]) == (4000, 12000)
    assert audit.actor_id == str(member.pk) and audit.target_type == "bookings.booking"
    assert audit.changes == {"refundable": [16000, 12000], "reason": [None, "goodwill: storm warning"]}
    assert history.reason == "goodwill: storm warning"


@pytest.mark.parametrize(
    ("override", "reason", "field"),
    [
        (-1, "why", "refundable"),
        (16001, "why", "refundable"),  # more than was paid
        ("100", "why", "refundable"),
        (True, "why", "refundable"),
        (100.0, "why", "refundable"),
        (100, "", "reason"),
        (100, "   ", "reason"),
    ],
)
def test_a_bad_override_is_refused_and_changes_nothing(override, reason, field):
    world = World()
    with tenant_context(world.tenant):
        booking = _paid(world.confirmed_booking("a", adults=2), 16000)

        with pytest.raises(DomainError) as refused:
            services.cancel_booking(booking, reason=reason, refundable_override=override)

        assert refused.value.status == 400 and field in refused.value.fields
        assert Booking.objects.get(pk=booking.pk).status == Booking.Status.CONFIRMED
        assert world.fresh_departure().sold == 2
        assert not AuditEvent.objects.filter(target_id=str(booking.pk)).exists()
        assert not OutboxEvent.objects.filter(aggregate_id=str(booking.pk), name="booking.cancelled").exists()
