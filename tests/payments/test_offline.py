"""Offline payments recorded by staff: the booking's paid amount grows only with a succeeded Payment row, audited
and announced; bad input, overpayment and the wrong state change nothing; retries and races count money once."""

from __future__ import annotations

from decimal import Decimal
from functools import partial

import pytest
from django.db import IntegrityError, transaction

from bookings import services
from bookings.models import Booking
from core.errors import ConflictError, DomainError
from events.models import OutboxEvent
from payments import selectors
from payments.models import Payment
from payments.services.offline import record_offline_payment
from payments.services.schedules import amount_due_now
from tenants.context import tenant_context
from tenants.models import AuditEvent
from tests.bookings.world import World
from tests.payments.helpers import TOTAL, clerk, retail_booking
from tests.races import attempt_together, run_together, unexpected


def _state(booking: Booking) -> tuple:
    fresh = Booking.objects.get(pk=booking.pk)
    return (
        fresh.status,
        fresh.paid,
        Payment.objects.filter(booking=booking).count(),
        OutboxEvent.objects.filter(aggregate_id=str(booking.pk), name="payment.processed").count(),
        AuditEvent.objects.filter(target_type="payments.payment").count(),
    )


def _assert_ledger_agrees(booking: Booking) -> None:
    fresh = Booking.objects.get(pk=booking.pk)
    ledger = selectors.ledger(fresh)
    assert ledger.net_paid == fresh.paid
    assert ledger.balance == fresh.balance
    assert ledger.refunded == 0


@pytest.mark.django_db
def test_recording_a_bank_transfer_adds_a_succeeded_payment_audits_it_and_announces_it():
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        booking = retail_booking(world, "a")
        assert (booking.total, amount_due_now(booking)) == (TOTAL, TOTAL)

        payment = record_offline_payment(
            booking, amount=5000, method="bank_transfer", reference=" BANK-0001 ", actor=staff
        )

        assert (payment.provider, payment.method, payment.status) == ("offline", "bank_transfer", "succeeded")
        assert (payment.amount, payment.currency, payment.provider_reference) == (5000, "EUR", "BANK-0001")
        assert payment.recorded_by == staff and payment.succeeded_at is not None
        booking.refresh_from_db()
        assert (booking.paid, booking.balance, amount_due_now(booking)) == (5000, 15000, 15000)
        assert booking.status == "on_hold"  # confirming is the consumer's job, once nothing is due
        _assert_ledger_agrees(booking)

        event = OutboxEvent.objects.get(aggregate_id=str(booking.pk), name="payment.processed")
        assert event.aggregate_type == "bookings.booking"
        assert event.payload == {
            "reference": booking.reference,
            "payment": str(payment.pk),
            "amount": 5000,
            "currency": "EUR",
            "provider": "offline",
            "method": "bank_transfer",
        }
        record = AuditEvent.objects.get(target_type="payments.payment", target_id=str(payment.pk))
        assert (record.action, record.actor_id) == ("create", str(staff.pk))
        assert record.changes["amount"] == [None, 5000]
        assert record.changes["booking_paid"] == [0, 5000]

        cash = record_offline_payment(booking, amount=15000, method="cash", reference="", actor=staff)
        booking.refresh_from_db()
        assert (booking.paid, amount_due_now(booking)) == (TOTAL, 0)
        assert [p.pk for p in selectors.payments_of(booking)] == [payment.pk, cash.pk]
        _assert_ledger_agrees(booking)


@pytest.mark.django_db
def test_a_confirmed_booking_can_be_settled_and_on_account_bookings_owe_nothing_now():
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        trade = world.confirmed_booking("t", adults=2)  # on account: invoiced to the agency
        assert trade.balance == 16000 and amount_due_now(trade) == 0

        record_offline_payment(
            trade, amount=16000, method="bank_transfer", reference="AGENCY-STMT-7", actor=staff
        )

        trade.refresh_from_db()
        assert (trade.status, trade.paid, trade.balance) == ("confirmed", 16000, 0)
        _assert_ledger_agrees(trade)


@pytest.mark.django_db
def test_more_than_the_balance_is_refused_with_the_balance_in_the_message_and_nothing_changes():
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        booking = retail_booking(world, "a")
        record_offline_payment(booking, amount=15000, method="cash", reference="", actor=staff)
        before = _state(booking)

        with pytest.raises(DomainError) as refused:
            record_offline_payment(booking, amount=5001, method="cash", reference="", actor=staff)

        assert refused.value.code == "overpayment" and refused.value.status == 400
        assert "€50.01" in refused.value.message and "€50.00" in refused.value.message
        assert refused.value.fields == {"amount": ["At most €50.00."]}
        assert _state(booking) == before

        record_offline_payment(booking, amount=5000, method="cash", reference="", actor=staff)
        with pytest.raises(ConflictError) as paid_up:
            record_offline_payment(booking, amount=1, method="cash", reference="", actor=staff)
        assert paid_up.value.code == "nothing_due"


@pytest.mark.parametrize(
    ("amount", "field"),
    [
        (0, "amount"),
        (-100, "amount"),
        (12.5, "amount"),
        (True, "amount"),
        ("1000", "amount"),
        (Decimal(10), "amount"),
    ],
    ids=["zero", "negative", "float", "bool", "string", "decimal"],
)
@pytest.mark.django_db
def test_bad_amounts_are_refused_and_change_nothing(amount, field):
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        booking = retail_booking(world, "a")
        before = _state(booking)

        with pytest.raises(DomainError) as refused:
            record_offline_payment(booking, amount=amount, method="cash", reference="", actor=staff)

        assert refused.value.status == 400 and field in refused.value.fields
        assert _state(booking) == before


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"method": "bitcoin"}, "method"),
        ({"currency": "USD"}, "currency"),
        ({"method": "bank_transfer", "reference": "  "}, "reference"),
        ({"reference": "x" * 256}, "reference"),
        ({"idempotency_key": "k" * 101}, "idempotency_key"),
    ],
    ids=["unknown-method", "other-currency", "transfer-without-reference", "long-reference", "long-key"],
)
@pytest.mark.django_db
def test_bad_details_are_refused_with_a_field_error_and_change_nothing(arguments, field):
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        booking = retail_booking(world, "a")
        before = _state(booking)
        call = {"amount": 1000, "method": "cash", "reference": "", "actor": staff, **arguments}

        with pytest.raises(DomainError) as refused:
            record_offline_payment(booking, **call)

        assert refused.value.status == 400 and list(refused.value.fields) == [field]
        assert _state(booking) == before


@pytest.mark.django_db
def test_payments_are_refused_for_bookings_that_are_no_longer_sold():
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        booking = services.cancel_booking(retail_booking(world, "a"), reason="changed plans")
        before = _state(booking)

        with pytest.raises(ConflictError) as refused:
            record_offline_payment(booking, amount=1000, method="cash", reference="", actor=staff)

        assert refused.value.code == "not_payable" and refused.value.status == 409
        assert refused.value.fields == {"status": ["cancelled"]}
        assert "cancelled" in refused.value.message
        assert _state(booking) == before
        assert amount_due_now(Booking.objects.get(pk=booking.pk)) == 0


@pytest.mark.django_db
def test_the_same_bank_reference_is_not_counted_twice_even_on_another_booking():
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        first, second = retail_booking(world, "a"), retail_booking(world, "b")
        record_offline_payment(first, amount=1000, method="bank_transfer", reference="BANK-1", actor=staff)
        before = _state(second)

        with pytest.raises(ConflictError) as refused:
            record_offline_payment(
                second, amount=1000, method="bank_transfer", reference="BANK-1", actor=staff
            )

        assert refused.value.code == "duplicate_reference"
        assert first.reference in refused.value.message
        assert _state(second) == before


@pytest.mark.django_db
def test_a_retry_with_the_same_idempotency_key_returns_the_same_payment_and_records_nothing_more():
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        booking = retail_booking(world, "a")
        call = {
            "amount": TOTAL,
            "method": "cash",
            "reference": "",
            "actor": staff,
            "idempotency_key": "form-1",
        }
        payment = record_offline_payment(booking, **call)
        after_first = _state(booking)

        # The booking is paid in full now: a retry must still answer, not be refused as an overpayment.
        assert record_offline_payment(booking, **call).pk == payment.pk
        assert _state(booking) == after_first

        with pytest.raises(ConflictError) as reused:
            record_offline_payment(booking, **{**call, "amount": 100})
        assert reused.value.code == "idempotency_key_reused"
        assert _state(booking) == after_first


@pytest.mark.django_db(transaction=True)
def test_two_clerks_recording_the_last_of_the_balance_at_once_count_it_once():
    world = World()
    staff = [clerk(world), clerk(world)]
    with tenant_context(world.tenant):
        booking = retail_booking(world, "a")
        record_offline_payment(booking, amount=TOTAL - 7000, method="cash", reference="", actor=staff[0])

    def record(actor, reference):
        record_offline_payment(booking, amount=7000, method="bank_transfer", reference=reference, actor=actor)
        return "recorded"

    outcomes = attempt_together(
        world.tenant,
        *[partial(record, actor, f"BANK-{n}") for n, actor in enumerate(staff, start=1)],
    )

    assert not unexpected(outcomes), outcomes
    assert sorted(outcomes) == ["nothing_due", "recorded"]
    with tenant_context(world.tenant):
        fresh = Booking.objects.get(pk=booking.pk)
        assert (fresh.paid, fresh.total) == (TOTAL, TOTAL)
        assert Payment.objects.filter(booking=booking).count() == 2
        _assert_ledger_agrees(fresh)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_retries_with_one_idempotency_key_record_one_payment():
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        booking = retail_booking(world, "a")

    def record(index: int) -> list[object]:
        with tenant_context(world.tenant):
            payment = record_offline_payment(
                booking,
                amount=3000,
                method="cash",
                reference="",
                actor=staff,
                idempotency_key="double-click",
            )
        return [payment.pk]

    payments = run_together(record, threads=2)

    assert not unexpected(payments), payments
    assert len(payments) == 2 and payments[0] == payments[1]
    with tenant_context(world.tenant):
        assert Booking.objects.get(pk=booking.pk).paid == 3000
        assert Payment.objects.filter(booking=booking).count() == 1


@pytest.mark.django_db
def test_the_ledger_counts_only_succeeded_payments():
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        booking = retail_booking(world, "a")
        record_offline_payment(booking, amount=4000, method="cash", reference="", actor=staff)
        Payment.objects.create(  # a card attempt that was declined (as the gateway flows write them)
            booking=booking, provider="stripe", method="card", amount=16000, currency="EUR", status="failed"
        )

        ledger = selectors.ledger(Booking.objects.get(pk=booking.pk))

        assert (ledger.paid, ledger.refunded, ledger.balance) == (4000, 0, TOTAL - 4000)
        assert len(selectors.payments_of(booking)) == 2
        _assert_ledger_agrees(booking)


@pytest.mark.django_db
def test_the_database_refuses_a_payment_of_nothing_or_a_success_without_its_time():
    world = World()
    with tenant_context(world.tenant):
        booking = retail_booking(world, "a")
        row = {"booking": booking, "provider": "offline", "method": "cash", "currency": "EUR"}
        with pytest.raises(IntegrityError, match="payment_amount_positive"), transaction.atomic():
            Payment.objects.create(**row, amount=0, status="created")
        with pytest.raises(IntegrityError, match="payment_succeeded_has_time"), transaction.atomic():
            Payment.objects.create(**row, amount=100, status="succeeded")
