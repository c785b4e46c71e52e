"""Booking transitions: each one moves seats, writes history and publishes its event; illegal ones are refused."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from bookings import services
from bookings.models import Booking
from bookings.services import Lead, TravellerDetails
from core.errors import DomainError
from events.models import OutboxEvent
from inventory.models import Departure, Hold
from inventory.services import place_hold
from tenants.context import tenant_context
from tests.bookings.world import LEAD, World
from tests.catalogue import (
    make_departure,
)
from tests.races import attempt_together, unexpected


def _events(booking) -> list[str]:
    return list(
        OutboxEvent.objects.filter(aggregate_id=str(booking.pk))
        .order_by("created_at")
        .values_list("name", flat=True)
    )


@pytest.mark.django_db
def test_a_booking_is_created_on_hold_from_a_hold_with_its_price_snapshotted():
    world = World()
    with tenant_context(world.tenant):
        hold = world.hold("h1", {"adult": 2, "child": 1})
        booking = services.create_booking(
            holds=[hold],
            lead=LEAD,
            channel="retail",
            language="en",
            travellers=[TravellerDetails("adult", "Ana", "Lima"), TravellerDetails("child", "Rui", "Lima")],
            consent={"terms_version": "2026-01", "marketing_opt_in": True, "ip_address": "203.0.113.9"},
        )

        assert booking.status == "on_hold" and booking.total == 25000 and booking.currency == "EUR"
        item = booking.items.get()
        assert item.quote["total"] == 25000 and item.hold_id == hold.pk and item.seats == 3
        assert booking.travellers.count() == 2 and booking.consents.get().marketing_opt_in
        assert list(booking.status_history.values_list("to_status", flat=True)) == ["draft", "on_hold"]
        assert _events(booking) == ["booking.initiated", "inventory.reserved", "booking.on_hold"]
        assert world.fresh_departure().held == 3


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"lead": Lead(name="", email="ana@example.com")}, "lead_name"),
        ({"lead": Lead(name="Ana", email="not an email")}, "lead_email"),
        ({"travellers": [TravellerDetails("adult", "A", "B")] * 3}, "travellers"),
        ({"travellers": [TravellerDetails("adult", "", "B")]}, "travellers"),
        ({"on_account": True}, "on_account"),
        ({"channel": "fax"}, "channel"),
    ],
)
def test_bad_input_is_refused_and_creates_nothing(kwargs, field):
    world = World()
    with tenant_context(world.tenant):
        hold = world.hold("h1")
        arguments = {"holds": [hold], "lead": LEAD, "channel": "retail", "language": "en", **kwargs}
        with pytest.raises(DomainError) as refused:
            services.create_booking(**arguments)
        assert field in refused.value.fields
        assert not Booking.objects.exists() and not OutboxEvent.objects.exists()
        assert Hold.objects.get(pk=hold.pk).status == "active"


@pytest.mark.django_db
def test_a_retail_booking_with_money_due_is_not_confirmed_without_payment():
    world = World()
    with tenant_context(world.tenant):
        booking = services.create_booking(
            holds=[world.hold("h1")], lead=LEAD, channel="retail", language="en"
        )
        with pytest.raises(DomainError) as refused:
            services.confirm_booking(booking)
        assert refused.value.code == "payment_due"
        assert Booking.objects.get(pk=booking.pk).status == "on_hold"


@pytest.mark.django_db
def test_an_on_account_booking_is_confirmed_within_credit_and_its_seats_are_sold():
    world = World()
    with tenant_context(world.tenant):
        booking = world.trade_booking("t1", 3)
        assert booking.total == 24000  # trade price

        confirmed = services.confirm_booking(booking)

        assert confirmed.status == "confirmed" and confirmed.confirmed_at is not None
        departure = world.fresh_departure()
        assert (departure.held, departure.sold) == (0, 3)
        assert services.credit_available(world.agency) == 500_000 - 24000
        assert _events(booking)[-1] == "booking.confirmed"


@pytest.mark.django_db
def test_illegal_transitions_are_refused_with_the_current_status():
    world = World()
    with tenant_context(world.tenant):
        booking = world.trade_booking("t1", 1)
        services.expire_booking(booking)
        for transition in (services.confirm_booking, services.cancel_booking, services.expire_booking):
            with pytest.raises(DomainError) as refused:
                transition(Booking.objects.get(pk=booking.pk))
            assert refused.value.code == "illegal_transition" and refused.value.status == 409
            assert refused.value.fields == {"status": ["expired"]}


@pytest.mark.django_db
def test_expiry_frees_the_seats():
    world = World()
    with tenant_context(world.tenant):
        booking = world.trade_booking("t1", 4)
        services.expire_booking(booking)
        assert world.fresh_departure().held == 0
        assert Booking.objects.get(pk=booking.pk).status == "expired"
        assert _events(booking)[-2:] == ["hold.expired", "booking.expired"]
        lapsed = OutboxEvent.objects.get(aggregate_id=str(booking.pk), name="hold.expired")
        assert lapsed.payload["holds"] == [str(booking.items.get().hold_id)]


@pytest.mark.django_db
def test_cancelling_a_confirmed_booking_puts_the_seats_back_and_announces_the_refund_per_policy():
    world = World()
    with tenant_context(world.tenant):
        booking = world.trade_booking("t1", 2)
        services.confirm_booking(booking)
        Booking.objects.filter(pk=booking.pk).update(paid=16000)  # settled by the agency

        services.cancel_booking(Booking.objects.get(pk=booking.pk), reason="client ill")

        departure = world.fresh_departure()
        assert (departure.held, departure.sold) == (0, 0)
        event = OutboxEvent.objects.get(aggregate_id=str(booking.pk), name="booking.cancelled")
        assert event.payload["refundable"] == 16000  # 30 days before: the 100 % tier


@pytest.mark.django_db(transaction=True)
def test_two_agents_racing_for_the_last_of_the_credit_cannot_both_confirm():
    world = World(credit_limit=100_000)
    with tenant_context(world.tenant):
        first, second = world.trade_booking("a", 7), world.trade_booking("b", 7)  # 56,000 each

    def confirm(booking):
        services.confirm_booking(booking)
        return "confirmed"

    outcomes = attempt_together(world.tenant, lambda: confirm(first), lambda: confirm(second))

    assert not unexpected(outcomes), outcomes
    assert sorted(outcomes) == ["confirmed", "credit_exceeded"]
    with tenant_context(world.tenant):
        assert services.credit_available(world.agency) == 100_000 - 56000
        assert world.fresh_departure().sold == 7


@pytest.mark.django_db
def test_the_same_idempotency_key_returns_the_same_booking():
    world = World()
    with tenant_context(world.tenant):
        hold = world.hold("h1")
        arguments = {
            "holds": [hold],
            "lead": LEAD,
            "channel": "retail",
            "language": "en",
            "idempotency_key": "k",
        }
        assert services.create_booking(**arguments).pk == services.create_booking(**arguments).pk
        assert Booking.objects.count() == 1


def _in_the_past(world) -> None:
    past = timezone.now() - dt.timedelta(days=1)
    Departure.objects.filter(pk=world.departure.pk).update(
        starts_at=past - dt.timedelta(hours=4), ends_at=past
    )


@pytest.mark.django_db
def test_complete_and_no_show_only_after_the_departure():
    world = World()
    with tenant_context(world.tenant):
        done, absent = world.trade_booking("a", 1), world.trade_booking("b", 1)
        services.confirm_booking(done)
        services.confirm_booking(absent)
        with pytest.raises(DomainError) as early:
            services.complete_booking(done)
        assert early.value.code == "not_ended"
        with pytest.raises(DomainError) as early:
            services.mark_no_show(absent)
        assert early.value.code == "not_started"

        _in_the_past(world)

        assert services.complete_booking(done).status == "completed"
        assert services.mark_no_show(absent, reason="not at the meeting point").status == "no_show"
        assert world.fresh_departure().sold == 2  # the seats were used (or forfeited), not given back


@pytest.mark.django_db
def test_the_beat_task_expires_bookings_whose_seats_lapsed():
    from bookings.tasks import expire_lapsed

    world = World()
    with tenant_context(world.tenant):
        lapsed, current = world.trade_booking("a", 2), world.trade_booking("b", 3)
        Booking.objects.filter(pk=lapsed.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))

    assert expire_lapsed() == 1

    with tenant_context(world.tenant):
        assert Booking.objects.get(pk=lapsed.pk).status == "expired"
        assert Booking.objects.get(pk=current.pk).status == "on_hold"
        assert world.fresh_departure().held == 3


@pytest.mark.django_db
def test_the_beat_task_expires_every_lapsed_booking_each_in_its_own_transaction():
    """Found by a probe: the beat expired a tenant's lapsed bookings in one transaction, so the second booking's row
    was locked after the first one's departure (against the lock order): the whole batch failed every minute."""
    from bookings.tasks import expire_lapsed

    world = World()
    with tenant_context(world.tenant):
        first, second = world.trade_booking("a", 2), world.trade_booking("b", 3)
        Booking.objects.filter(pk__in=[first.pk, second.pk]).update(
            expires_at=timezone.now() - dt.timedelta(minutes=1)
        )

    assert expire_lapsed() == 2

    with tenant_context(world.tenant):
        assert {booking.status for booking in Booking.objects.filter(pk__in=[first.pk, second.pk])} == {"expired"}
        assert world.fresh_departure().held == 0


@pytest.mark.django_db
def test_a_promo_code_counts_against_its_limit_and_is_given_back_when_the_booking_lapses():
    from tours.models import PromoCode

    world = World()
    with tenant_context(world.tenant):
        PromoCode.objects.create(code="SPRING10", kind="percent", percent=10, max_uses=1)
        first = services.create_booking(
            holds=[world.hold("h1")], lead=LEAD, channel="retail", language="en", promo_code="spring10"
        )
        assert first.total == 18000  # 2 × 100.00 − 10 %
        with pytest.raises(DomainError) as exhausted:
            services.create_booking(
                holds=[world.hold("h2")], lead=LEAD, channel="retail", language="en", promo_code="SPRING10"
            )
        assert exhausted.value.code == "promo_exhausted"

        services.expire_booking(first)

        assert PromoCode.objects.get(code="SPRING10").times_used == 0
        again = services.create_booking(
            holds=[world.hold("h3")], lead=LEAD, channel="retail", language="en", promo_code="SPRING10"
        )
        assert again.total == 18000


def _second_departure(world, capacity: int) -> Departure:
    return make_departure(
        world.option, capacity=capacity, starts_at=world.departure.starts_at + dt.timedelta(days=7)
    )


@pytest.mark.django_db
@pytest.mark.parametrize("confirm", [False, True])
def test_moving_to_another_date_moves_the_seats_and_reprices(confirm):
    world = World()
    with tenant_context(world.tenant):
        later = _second_departure(world, capacity=10)
        booking = world.trade_booking("a", 3)
        if confirm:
            booking = services.confirm_booking(booking)
        item = booking.items.get()

        moved = services.move_departure(booking, item, later, reason="client asked")

        item.refresh_from_db()
        assert item.departure_id == later.pk and moved.total == booking.total  # same price on both dates
        old, new = world.fresh_departure(), Departure.objects.get(pk=later.pk)
        assert (old.held, old.sold) == (0, 0)
        assert (new.held, new.sold) == ((0, 3) if confirm else (3, 0))
        event = OutboxEvent.objects.get(aggregate_id=str(booking.pk), name="booking.modified")
        assert event.payload["difference"] == 0 and event.payload["moved_to"] == str(later.pk)


@pytest.mark.django_db
def test_a_move_that_does_not_fit_changes_nothing():
    world = World()
    with tenant_context(world.tenant):
        full = _second_departure(world, capacity=2)
        booking = world.trade_booking("a", 3)
        with pytest.raises(DomainError) as refused:
            services.move_departure(booking, booking.items.get(), full)
        assert refused.value.code == "not_enough_seats"
        assert booking.items.get().departure_id == world.departure.pk
        assert world.fresh_departure().held == 3 and Departure.objects.get(pk=full.pk).held == 0


@pytest.mark.django_db(transaction=True)
def test_a_move_racing_a_hold_for_the_last_seats_never_leaves_both_or_neither():
    world = World()
    with tenant_context(world.tenant):
        later = _second_departure(world, capacity=3)
        booking = world.trade_booking("a", 3)
        item = booking.items.get()

    def move():
        services.move_departure(booking, item, later)
        return "moved"

    def grab():
        place_hold(Departure.objects.get(pk=later.pk), {"adult": 3}, "retail", "grab")
        return "held"

    outcomes = dict(zip(["move", "grab"], attempt_together(world.tenant, move, grab), strict=True))

    assert not unexpected(outcomes.values()), outcomes
    assert sorted(outcomes.values()) in (["moved", "not_enough_seats"], ["held", "not_enough_seats"])
    with tenant_context(world.tenant):
        old, new = world.fresh_departure(), Departure.objects.get(pk=later.pk)
        item.refresh_from_db()
        assert new.held == 3  # exactly one of the two got the seats
        if outcomes["move"] == "moved":
            assert (old.held, item.departure_id) == (0, later.pk)
        else:
            assert (old.held, item.departure_id) == (3, world.departure.pk)


@pytest.mark.django_db
def test_a_reference_already_taken_is_drawn_again(monkeypatch):
    world = World()
    with tenant_context(world.tenant):
        first = services.create_booking(holds=[world.hold("h1")], lead=LEAD, channel="retail", language="en")
        draws = iter([first.reference, "ZZZZZZZZ"])
        monkeypatch.setattr("bookings.services.create.new_reference", lambda: next(draws))

        second = services.create_booking(holds=[world.hold("h2")], lead=LEAD, channel="retail", language="en")

        assert second.reference == "ZZZZZZZZ"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("cancel_booking", "cancel_booking"),
        ("confirm_booking", "expire_booking"),
        ("cancel_booking", "expire_booking"),
    ],
)
def test_two_transitions_at_once_leave_the_seats_consistent(first, second):
    world = World()
    with tenant_context(world.tenant):
        booking = world.trade_booking("a", 4)

    def run(name):
        getattr(services, name)(booking)
        return "ok"

    outcomes = attempt_together(world.tenant, lambda: run(first), lambda: run(second))

    assert not unexpected(outcomes), outcomes
    assert sorted(outcomes) == ["illegal_transition", "ok"]
    with tenant_context(world.tenant):
        final = Booking.objects.get(pk=booking.pk).status
        departure = world.fresh_departure()
        assert (departure.held, departure.sold) == ((0, 4) if final == "confirmed" else (0, 0))
        assert booking.status_history.count() == 3  # draft, on_hold and the one transition that won


@pytest.mark.django_db
def test_booking_a_departure_holds_and_books_in_one_step_and_a_refusal_leaves_no_hold():
    world = World()
    with tenant_context(world.tenant):
        departure = world.fresh_departure()
        booking = services.book_departure(
            departure, {"adult": 2}, lead=LEAD, language="en", idempotency_key="form-1"
        )
        again = services.book_departure(
            departure, {"adult": 2}, lead=LEAD, language="en", idempotency_key="form-1"
        )
        assert again.pk == booking.pk and booking.status == Booking.Status.ON_HOLD
        assert booking.items.get().hold.seats == 2
        assert Departure.objects.get(pk=departure.pk).held == 2

        with pytest.raises(DomainError) as refused:
            services.book_departure(
                departure,
                {"adult": 1},
                lead=Lead(name="", email="x@example.com"),
                language="en",
                idempotency_key="form-2",
            )
        assert refused.value.code == "invalid" and "lead_name" in refused.value.fields
        assert Departure.objects.get(pk=departure.pk).held == 2  # the seats held for it went back
        assert not Hold.objects.filter(idempotency_key="retail-booking:form-2").exists()
