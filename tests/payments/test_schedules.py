"""Payment schedules: in full, deposit + balance, equal installments — exact in every currency's minor units, due
on the right days — and what a booking owes now as its payments cover them in order."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from bookings import services
from payments.models import Installment, PaymentSchedule, PaymentTerms
from payments.services import schedules
from payments.services.offline import record_offline_payment
from payments.services.schedules import amount_due_now
from tenants.context import tenant_context
from tests.bookings.world import World
from tests.payments.helpers import TOTAL, clerk, retail_booking

BOOKED = dt.date(2026, 3, 1)
DEPARTS = dt.date(2026, 6, 1)
InstallmentKind = Installment.Kind


def _terms(**values) -> dict:
    base = {"kind": "deposit", "balance_days_before": 30, "installment_count": 3}
    return {**base, **values}


def _plan(total: int, currency: str, **terms) -> list[tuple[str, dt.date, int]]:
    return [
        (p.kind, p.due_on, p.amount)
        for p in schedules.plan(total, currency, _terms(**terms), BOOKED, DEPARTS)
    ]


def test_a_percent_deposit_now_and_the_balance_thirty_days_before_departure():
    assert _plan(123457, "EUR", deposit_percent="30") == [
        (InstallmentKind.DEPOSIT, BOOKED, 37037),
        (InstallmentKind.BALANCE, dt.date(2026, 5, 2), 123457 - 37037),
    ]


def test_a_fixed_deposit_applies_only_in_its_own_currency():
    assert _plan(50000, "EUR", deposit_amount=10000, deposit_currency="EUR")[0] == (
        InstallmentKind.DEPOSIT,
        BOOKED,
        10000,
    )
    # Never converted: a USD booking under EUR terms pays in full.
    assert _plan(50000, "USD", deposit_amount=10000, deposit_currency="EUR") == [
        (InstallmentKind.FULL, BOOKED, 50000)
    ]


def test_everything_is_due_at_booking_when_the_balance_day_has_passed():
    late = schedules.plan(90000, "EUR", _terms(deposit_percent="20"), BOOKED, BOOKED + dt.timedelta(days=20))
    assert [(p.kind, p.amount) for p in late] == [(InstallmentKind.FULL, 90000)]


@pytest.mark.parametrize(
    ("total", "currency", "parts"),
    [
        (10000, "EUR", [3333, 3333, 3334]),
        (100000, "JPY", [33333, 33333, 33334]),  # zero decimals: yen
        (100000, "KWD", [33330, 33330, 33340]),  # three decimals: tens of fils for the card networks
        (12345, "BHD", [4110, 4110, 4125]),
        (2, "EUR", [2]),  # too small to split: in full
    ],
)
def test_installments_are_equal_in_charge_steps_with_the_remainder_last(total, currency, parts):
    plan = schedules.plan(total, currency, _terms(kind="installments"), BOOKED, DEPARTS)
    assert [p.amount for p in plan] == parts
    assert sum(p.amount for p in plan) == total
    if len(parts) == 3:
        assert [p.due_on for p in plan] == [BOOKED, dt.date(2026, 4, 1), dt.date(2026, 5, 2)]


def test_a_percent_deposit_in_a_three_decimal_currency_is_a_multiple_of_ten_fils():
    assert _plan(12345, "KWD", deposit_percent="33")[0] == (InstallmentKind.DEPOSIT, BOOKED, 4070)


@pytest.mark.django_db
def test_a_booking_owes_its_deposit_first_then_nothing_until_the_balance_day():
    world = World()
    with tenant_context(world.tenant):
        PaymentTerms.objects.create(
            name="Deposit",
            kind="deposit",
            deposit_percent=Decimal(25),
            balance_days_before=0,
            is_default=True,
        )
        booking = retail_booking(world, "a")
        schedule = PaymentSchedule.objects.get(booking=booking)
        assert [i.amount for i in schedule.installments.all()] == [TOTAL // 4, TOTAL - TOTAL // 4]
        assert amount_due_now(booking) == TOTAL // 4
        record_offline_payment(booking, amount=TOTAL // 4, method="cash", reference="", actor=clerk(world))
        booking.refresh_from_db()
        assert amount_due_now(booking) == 0
        confirmed = services.confirm_booking(booking)
        assert confirmed.status == "confirmed"
        balance_day = schedule.installments.get(sequence=2).due_on
        assert amount_due_now(confirmed, today=balance_day) == TOTAL - TOTAL // 4
        assert amount_due_now(confirmed, today=balance_day - dt.timedelta(days=1)) == 0


@pytest.mark.django_db
def test_a_tours_own_terms_win_over_the_default_and_on_account_bookings_have_no_schedule():
    world = World()
    with tenant_context(world.tenant):
        PaymentTerms.objects.create(
            name="Default", kind="deposit", deposit_percent=Decimal(10), is_default=True
        )
        own = PaymentTerms.objects.create(
            name="Installments", kind="installments", installment_count=2, balance_days_before=0
        )
        world.tour.payment_terms = own
        world.tour.save(update_fields=["payment_terms"])
        booking = retail_booking(world, "a")
        assert PaymentSchedule.objects.get(booking=booking).terms["name"] == "Installments"
        trade = world.trade_booking("t", 2)
        assert not PaymentSchedule.objects.filter(booking=trade).exists()
        assert amount_due_now(trade) == 0


@pytest.mark.django_db
def test_a_change_of_total_replans_the_schedule_and_keeps_it_exact():
    world = World()
    with tenant_context(world.tenant):
        PaymentTerms.objects.create(
            name="Deposit",
            kind="deposit",
            deposit_percent=Decimal(50),
            balance_days_before=0,
            is_default=True,
        )
        booking = retail_booking(world, "a")
        item = booking.items.get()
        changed = services.modify_booking(booking, item, {"adult": 3})
        amounts = list(Installment.objects.filter(schedule__booking=booking).values_list("amount", flat=True))
        assert sum(amounts) == changed.total == TOTAL * 3 // 2
        assert amounts[0] == changed.total // 2
