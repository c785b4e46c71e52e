"""Regressions found in review: lock order between bookings sharing departures and agencies, multi-item bookings
(traveller seats, fixed promo codes), what an agency still owes after cancelling, the refund override, and
idempotency keys per buyer."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from bookings import services
from bookings.models import Booking
from bookings.services import TravellerDetails, credit
from core.errors import ConflictError, DomainError
from events.models import OutboxEvent
from inventory import services as inventory_services
from inventory.services import place_hold
from payments.services.offline import record_offline_payment
from tenants.context import tenant_context
from tests.bookings.world import LEAD, World
from tests.catalogue import make_agency, make_contract, make_departure
from tests.races import Racer, finish, run_after
from tours.models import PromoCode


def _next_day(world: World):
    return make_departure(
        world.option, capacity=20, starts_at=world.departure.starts_at + dt.timedelta(days=1)
    )


def _in_five_days(world: World):
    return make_departure(
        world.option, capacity=20, starts_at=timezone.now().replace(microsecond=0) + dt.timedelta(days=5)
    )


@pytest.mark.django_db(transaction=True)
def test_two_multi_item_bookings_on_the_same_departures_confirm_at_once(monkeypatch):
    world = World()
    with tenant_context(world.tenant):
        second_day = _next_day(world)
        other = make_agency()
        make_contract(other)
        first = services.create_booking(
            holds=[
                place_hold(world.fresh_departure(), {"adult": 1}, "trade", "x1", agency=world.agency),
                place_hold(second_day, {"adult": 1}, "trade", "x2", agency=world.agency),
            ],
            lead=LEAD,
            channel="trade",
            language="en",
            agency=world.agency,
            on_account=True,
        )
        second = services.create_booking(
            holds=[
                place_hold(second_day, {"adult": 1}, "trade", "y1", agency=other),
                place_hold(world.fresh_departure(), {"adult": 1}, "trade", "y2", agency=other),
            ],
            lead=LEAD,
            channel="trade",
            language="en",
            agency=other,
            on_account=True,
        )

    def confirm(booking):
        with tenant_context(world.tenant):
            services.confirm_booking(booking)
        return "ok"

    second_racer = Racer("the second confirmation", lambda: confirm(second))

    def let_the_second_in(*args):
        """Between two departures: the window in which the other booking took the second one. The first
        confirmation has converted one departure's seats; the second runs until it waits for a lock (or ends)."""
        second_racer.start()
        second_racer.wait_until_blocked_or_finished()

    run_after(monkeypatch, inventory_services, "convert_hold", let_the_second_in)
    first_racer = Racer("the first confirmation", lambda: confirm(first)).start()

    assert finish(first_racer, second_racer) == ["ok", "ok"]


@pytest.mark.django_db(transaction=True)
def test_changing_an_on_account_booking_while_the_agency_confirms_another_does_not_deadlock(monkeypatch):
    world = World()
    with tenant_context(world.tenant):
        first = world.confirmed_booking("m", adults=2)
        second = world.trade_booking("c", 2)

    def modify():
        with tenant_context(world.tenant):
            services.modify_booking(first, first.items.get(), {"adult": 3})
        return "ok"

    def confirm():
        with tenant_context(world.tenant):
            services.confirm_booking(second)
        return "ok"

    modifier = Racer("the change", modify)

    def let_the_change_in(*args, **kwargs):
        """The confirmation holds the agency row here; the change runs until it waits for a lock (or ends)."""
        modifier.start()
        modifier.wait_until_blocked_or_finished()

    run_after(monkeypatch, credit, "credit_available", let_the_change_in)
    confirmer = Racer("the confirmation", confirm).start()

    assert finish(modifier, confirmer) == ["ok", "ok"]


@pytest.mark.django_db
def test_travellers_of_a_two_item_booking_are_seated_on_the_item_with_room():
    world = World()
    with tenant_context(world.tenant):
        second_day = _next_day(world)
        booking = services.create_booking(
            holds=[world.hold("a", {"adult": 1}), place_hold(second_day, {"adult": 1}, "retail", "b")],
            lead=LEAD,
            channel="retail",
            language="en",
            travellers=[TravellerDetails("adult", "A", "One"), TravellerDetails("adult", "B", "Two")],
        )
        assert [item.travellers.count() for item in booking.items.order_by("departure__starts_at")] == [1, 1]


@pytest.mark.django_db
def test_a_fixed_amount_promo_code_comes_off_a_booking_once():
    world = World()
    with tenant_context(world.tenant):
        PromoCode.objects.create(code="TENOFF", kind="fixed", amount=1000, currency="EUR")
        booking = services.create_booking(
            holds=[
                world.hold("p1", {"adult": 1}),
                place_hold(_next_day(world), {"adult": 1}, "retail", "p2"),
            ],
            lead=LEAD,
            channel="retail",
            language="en",
            promo_code="TENOFF",
        )
        assert booking.total == 20000 - 1000
        assert PromoCode.objects.get(code="TENOFF").times_used == 1


@pytest.mark.django_db
def test_an_agency_still_owes_its_cancellation_charge_on_account():
    world = World(credit_limit=100_000)
    with tenant_context(world.tenant):
        hold = place_hold(_in_five_days(world), {"adult": 2}, "trade", "c", agency=world.agency)
        booking = services.confirm_booking(
            services.create_booking(
                holds=[hold], lead=LEAD, channel="trade", language="en", agency=world.agency, on_account=True
            )
        )
        services.cancel_booking(booking, reason="client ill")  # 5 days ahead: the 50 % tier, 8,000 owed

        assert Booking.objects.get(pk=booking.pk).cancellation_charge == 8000
        assert services.credit_available(world.agency) == 100_000 - 8000


@pytest.mark.django_db
def test_a_more_generous_refund_override_lowers_the_charge_by_as_much_and_no_more():
    world = World()
    with tenant_context(world.tenant):
        hold = place_hold(_in_five_days(world), {"adult": 2}, "trade", "o", agency=world.agency)
        booking = services.confirm_booking(
            services.create_booking(
                holds=[hold], lead=LEAD, channel="trade", language="en", agency=world.agency, on_account=True
            )
        )
        record_offline_payment(booking, amount=6000, method="cash", reference="", actor=None)
        booking = Booking.objects.get(pk=booking.pk)
        terms = services.cancellation_terms(booking)
        assert (booking.total, booking.paid, terms.charge, terms.refundable) == (16000, 6000, 8000, 0)

        services.cancel_booking(booking, reason="goodwill", refundable_override=1)

        payload = OutboxEvent.objects.get(aggregate_id=str(booking.pk), name="booking.cancelled").payload
        assert (payload["charge"], payload["credit"], payload["refundable"]) == (7999, 8001, 1)


@pytest.mark.django_db
def test_idempotency_keys_belong_to_their_buyer_and_to_their_request():
    world = World()
    with tenant_context(world.tenant):
        other = make_agency()
        make_contract(other)
        first_hold = world.hold("h-a", {"adult": 1}, agency=world.agency)
        first = services.create_booking(
            holds=[first_hold],
            lead=LEAD,
            channel="trade",
            language="en",
            agency=world.agency,
            idempotency_key="K1",
        )
        theirs = services.create_booking(
            holds=[world.hold("h-b", {"adult": 3}, agency=other)],
            lead=LEAD,
            channel="trade",
            language="en",
            agency=other,
            idempotency_key="K1",
        )
        again = services.create_booking(
            holds=[first_hold],
            lead=LEAD,
            channel="trade",
            language="en",
            agency=world.agency,
            idempotency_key="K1",
        )
        with pytest.raises(ConflictError) as reused:
            services.create_booking(
                holds=[world.hold("h-c", {"adult": 1}, agency=world.agency)],
                lead=LEAD,
                channel="trade",
                language="en",
                agency=world.agency,
                idempotency_key="K1",
            )
    assert theirs.pk != first.pk and again.pk == first.pk
    assert reused.value.code == "idempotency_key_reused"


@pytest.mark.django_db
def test_an_unknown_language_is_refused():
    world = World()
    with tenant_context(world.tenant), pytest.raises(DomainError) as refused:
        services.create_booking(holds=[world.hold("l")], lead=LEAD, channel="retail", language="english")
    assert "language" in refused.value.fields
