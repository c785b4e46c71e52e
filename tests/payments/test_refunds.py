"""Refunds decided in the database: split across payments, never more than was taken (also under concurrent
requests, and by the database's own constraint), idempotent per request key, announced when done; a cancelled
booking whose money has all gone back becomes "refunded". (Gateway refunds: test_gateway_flows.py.)"""

from __future__ import annotations

from functools import partial

import pytest
from django.db import IntegrityError, transaction

from bookings import services
from bookings.models import Booking
from core.errors import ConflictError, DomainError
from events.models import OutboxEvent
from payments import selectors
from payments.models import Payment, Refund
from payments.services import refunds
from payments.services.offline import record_offline_payment
from tenants.context import tenant_context
from tests.bookings.world import World
from tests.payments.helpers import TOTAL, clerk, retail_booking
from tests.races import attempt_together, unexpected


def _paid_booking(world: World, key: str, parts=(TOTAL,)) -> Booking:
    staff = clerk(world)
    booking = retail_booking(world, key)
    for number, amount in enumerate(parts):
        record_offline_payment(
            booking, amount=amount, method="bank_transfer", reference=f"{key}-{number}", actor=staff
        )
    return Booking.objects.get(pk=booking.pk)


def _refunded_events(booking: Booking) -> int:
    return OutboxEvent.objects.filter(aggregate_id=str(booking.pk), name="payment.refunded").count()


@pytest.mark.django_db
def test_a_refund_reserves_then_lowers_paid_when_the_money_has_gone_back():
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        booking = _paid_booking(world, "a")
        [refund] = refunds.request_refund(
            booking, amount=5000, reason="Goodwill", request_key="r1", actor=staff
        )
        assert (refund.status, refund.amount, refund.kind) == ("pending", 5000, "goodwill")
        assert Payment.objects.get(pk=refund.payment_id).refunded == 5000
        assert Booking.objects.get(pk=booking.pk).paid == TOTAL  # not gone back yet
        assert refunds.refundable(booking) == TOTAL - 5000

        with pytest.raises(DomainError) as missing:
            refunds.complete_offline_refund(refund, reference="", actor=staff)
        assert missing.value.code == "invalid"
        done = refunds.complete_offline_refund(refund, reference="BANK-OUT-1", actor=staff)
        assert (done.status, done.provider_reference) == ("succeeded", "BANK-OUT-1")
        fresh = Booking.objects.get(pk=booking.pk)
        assert fresh.paid == TOTAL - 5000
        assert selectors.ledger(fresh).refunded == 5000 and selectors.ledger(fresh).net_paid == fresh.paid
        assert _refunded_events(booking) == 1
        # Completing again changes nothing.
        refunds.complete_offline_refund(Refund.objects.get(pk=refund.pk), reference="BANK-OUT-2", actor=staff)
        assert (Booking.objects.get(pk=booking.pk).paid, _refunded_events(booking)) == (TOTAL - 5000, 1)


@pytest.mark.django_db
def test_more_than_was_taken_is_refused_and_changes_nothing():
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        booking = _paid_booking(world, "a", parts=(8000,))
        for amount, code in (
            (8001, "over_refund"),
            (0, "invalid"),
            (-5, "invalid"),
            ("10", "invalid"),
            (True, "invalid"),
        ):
            with pytest.raises(DomainError) as refused:
                refunds.request_refund(
                    booking, amount=amount, reason="Too much", request_key=f"k{amount}", actor=staff
                )
            assert refused.value.code == code
        with pytest.raises(DomainError):
            refunds.request_refund(booking, amount=100, reason="  ", request_key="no-reason", actor=staff)
        assert not Refund.objects.exists()
        assert Payment.objects.get(booking=booking).refunded == 0


@pytest.mark.django_db
def test_a_refund_larger_than_one_payment_is_split_across_them():
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        booking = _paid_booking(world, "a", parts=(6000, 9000))
        parts = refunds.request_refund(
            booking, amount=12000, reason="Split", request_key="split", actor=staff
        )
        assert sorted(refund.amount for refund in parts) == [3000, 9000]
        assert {refund.payment_id for refund in parts} == set(Payment.objects.values_list("pk", flat=True))
        assert all(p.refunded == p.amount or p.refunded == 3000 for p in Payment.objects.all())
        with pytest.raises(DomainError) as over:
            refunds.request_refund(booking, amount=3001, reason="More", request_key="more", actor=staff)
        assert over.value.code == "over_refund"


@pytest.mark.django_db
def test_a_retried_request_refunds_once_and_a_reused_key_is_refused():
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        booking = _paid_booking(world, "a")
        first = refunds.request_refund(booking, amount=4000, reason="Retry", request_key="same", actor=staff)
        again = refunds.request_refund(booking, amount=4000, reason="Retry", request_key="same", actor=staff)
        assert [r.pk for r in again] == [r.pk for r in first]
        with pytest.raises(ConflictError) as reused:
            refunds.request_refund(booking, amount=1000, reason="Other", request_key="same", actor=staff)
        assert reused.value.code == "idempotency_key_reused"
        assert Refund.objects.count() == 1


@pytest.mark.django_db
def test_the_database_refuses_a_payment_refunded_beyond_its_amount():
    world = World()
    with tenant_context(world.tenant):
        booking = _paid_booking(world, "a", parts=(5000,))
        payment = Payment.objects.get(booking=booking)
        with pytest.raises(IntegrityError), transaction.atomic():
            Payment.objects.filter(pk=payment.pk).update(refunded=5001)


@pytest.mark.django_db(transaction=True)
def test_concurrent_refund_requests_never_refund_more_than_was_taken():
    world = World()
    staff = [clerk(world) for _ in range(4)]
    with tenant_context(world.tenant):
        booking = _paid_booking(world, "a")

    def request(actor, number):
        refunds.request_refund(
            booking, amount=TOTAL * 6 // 10, reason="Race", request_key=f"race-{number}", actor=actor
        )
        return "refunded"

    outcomes = attempt_together(world.tenant, *[partial(request, actor, n) for n, actor in enumerate(staff)])
    assert not unexpected(outcomes), outcomes
    assert sorted(outcomes) == ["over_refund"] * 3 + ["refunded"]
    with tenant_context(world.tenant):
        assert sum(Refund.objects.values_list("amount", flat=True)) == TOTAL * 6 // 10
        assert Payment.objects.get(booking=booking).refunded == TOTAL * 6 // 10


@pytest.mark.django_db
def test_cancelling_a_paid_booking_refunds_per_policy_and_it_ends_refunded():
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        booking = _paid_booking(world, "a")
        booking = services.confirm_booking(booking)
        cancelled = services.cancel_booking(booking, actor=staff, reason="Plans changed")
        [refund] = Refund.objects.filter(booking=booking)
        assert (refund.kind, refund.amount, refund.status) == ("cancellation", TOTAL, "pending")  # 100 % tier
        assert cancelled.status == "cancelled"
        refunds.complete_offline_refund(refund, reference="BANK-BACK", actor=staff)
        fresh = Booking.objects.get(pk=booking.pk)
        assert (fresh.status, fresh.paid) == ("refunded", 0)


@pytest.mark.django_db
def test_a_change_that_lowers_the_price_below_what_was_paid_gives_the_difference_back():
    world = World()
    with tenant_context(world.tenant):
        booking = services.confirm_booking(_paid_booking(world, "a"))
        services.modify_booking(booking, booking.items.get(), {"adult": 1})
        [refund] = Refund.objects.filter(booking=booking)
        assert (refund.kind, refund.amount, refund.status) == ("surplus", TOTAL // 2, "pending")
        assert refunds.refundable(booking) == TOTAL // 2


@pytest.mark.django_db
def test_offline_refunds_of_several_bookings_are_recorded_together_and_a_refused_one_undoes_nothing_else():
    world = World()
    with tenant_context(world.tenant):
        bookings = [_paid_booking(world, key) for key in ("one", "two")]
        pending = [
            refunds.request_refund(
                booking, amount=1000, reason="gesture", request_key=f"gesture-{n}", actor=clerk(world)
            )[0]
            for n, booking in enumerate(bookings)
        ]
        done, refused = refunds.complete_offline_refunds(
            [(pending[1], "BACK-1"), (pending[0], "  ")], actor=clerk(world)
        )
        assert isinstance(done, Refund) and done.status == "succeeded"
        assert isinstance(refused, DomainError) and "reference" in refused.fields
        assert [Refund.objects.get(pk=refund.pk).status for refund in pending] == ["pending", "succeeded"]
        assert [Booking.objects.get(pk=b.pk).paid for b in bookings] == [TOTAL, TOTAL - 1000]


@pytest.mark.django_db(transaction=True)
def test_two_clerks_recording_the_same_refunds_sent_back_at_once_record_each_once():
    world = World()
    with tenant_context(world.tenant):
        bookings = [_paid_booking(world, key) for key in ("one", "two")]
        pending = [
            refunds.request_refund(
                booking, amount=1000, reason="gesture", request_key=f"gesture-{n}", actor=clerk(world)
            )[0]
            for n, booking in enumerate(bookings)
        ]

    def send_back(order):
        return refunds.complete_offline_refunds(
            [(pending[index], f"BACK-{index}") for index in order], actor=clerk(world)
        )

    outcomes = attempt_together(world.tenant, partial(send_back, (0, 1)), partial(send_back, (1, 0)))

    assert not unexpected(outcomes)
    assert not unexpected([part for outcome in outcomes for part in outcome])
    with tenant_context(world.tenant):
        assert [Refund.objects.get(pk=refund.pk).status for refund in pending] == ["succeeded", "succeeded"]
        assert [Booking.objects.get(pk=b.pk).paid for b in bookings] == [TOTAL - 1000, TOTAL - 1000]
        assert OutboxEvent.objects.filter(name="payment.refunded").count() == 2
