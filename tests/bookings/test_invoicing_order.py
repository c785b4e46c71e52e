"""Booking events reach their consumers in any order, and each may be delivered again. Whatever the order, the
invoices end up saying what was sold, net of what the cancellation gives back, issued once, each with its PDF."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.utils import timezone

from bookings import services
from bookings.handlers import documents as document_handlers
from bookings.handlers import invoices as invoice_handlers
from bookings.models import Booking, Document, Invoice
from events.models import OutboxEvent
from inventory.services import place_hold
from tenants.context import tenant_context
from tests.bookings.world import LEAD, World
from tests.catalogue import make_departure

pytestmark = pytest.mark.django_db

CONSUMER_OF = {
    "booking.confirmed": invoice_handlers.issue_invoice,
    "booking.modified": invoice_handlers.reinvoice,
    "booking.cancelled": invoice_handlers.cancellation_credit_note,
}


def _confirm(booking: Booking) -> None:
    services.confirm_booking(Booking.objects.get(pk=booking.pk))


def _add_an_adult(booking: Booking) -> None:
    booking = Booking.objects.get(pk=booking.pk)
    item = booking.items.get()
    services.modify_booking(booking, item, {"adult": item.units["adult"] + 1})


def _cancel(booking: Booking) -> None:
    services.cancel_booking(Booking.objects.get(pk=booking.pk), reason="client ill")


CHANGES = {"booking.confirmed": _confirm, "booking.modified": _add_an_adult, "booking.cancelled": _cancel}


def _orders(events: list[str]) -> list[tuple[tuple[str, str], ...]]:
    """Every way the changes (in their order) and their consumers (each after its own change) can interleave."""
    steps = [("change", name) for name in events] + [("consume", name) for name in events]
    orders = []
    for order in itertools.permutations(steps):
        changes = [name for step, name in order if step == "change"]
        consumed_after_change = all(
            order.index(("consume", name)) > order.index(("change", name)) for name in events
        )
        if changes == events and consumed_after_change:
            orders.append(order)
    return orders


def _net_invoiced(booking: Booking) -> int:
    return sum(Invoice.objects.filter(booking=booking).values_list("total", flat=True))


@pytest.fixture
def world(monkeypatch):
    monkeypatch.setattr("bookings.services.documents.render_pdf", lambda template, context: b"%PDF-fake")
    world = World()
    with tenant_context(world.tenant):
        # Five days ahead: the 50 % tier, so the cancellation keeps half of the price.
        world.soon = make_departure(
            world.option,
            capacity=500,
            starts_at=timezone.now().replace(microsecond=0) + dt.timedelta(days=5, hours=1),
        )
    return world


def _run(world: World, key: str, order) -> tuple[Booking, dict]:
    hold = place_hold(world.soon, {"adult": 1}, "trade", key, agency=world.agency)
    booking = services.create_booking(
        holds=[hold], lead=LEAD, channel="trade", language="en", agency=world.agency, on_account=True
    )
    events = {}
    for step, name in order:
        if step == "change":
            CHANGES[name](booking)
            events[name] = OutboxEvent.objects.filter(aggregate_id=str(booking.pk), name=name).latest(
                "created_at"
            )
        else:
            CONSUMER_OF[name](events[name])
    return Booking.objects.get(pk=booking.pk), events


@pytest.mark.parametrize(
    "events",
    [
        ["booking.confirmed", "booking.modified", "booking.cancelled"],
        ["booking.confirmed", "booking.cancelled"],
    ],
    ids=["confirm-modify-cancel", "confirm-cancel"],
)
def test_in_any_order_the_net_invoiced_is_the_cancellation_charge_issued_once_each_with_a_pdf(world, events):
    orders = _orders(events)
    assert len(orders) == {2: 3, 3: 15}[len(events)]
    with tenant_context(world.tenant):
        for number, order in enumerate(orders):
            booking, published = _run(world, f"order-{len(events)}-{number}", order)
            charge = published["booking.cancelled"].payload["charge"]
            issued = Invoice.objects.filter(booking=booking).count()
            for _step, name in order[len(events) :]:  # every consumer delivered again, same order
                CONSUMER_OF[name](published[name])
            for event in OutboxEvent.objects.filter(aggregate_id=str(booking.pk), name="invoice.issued"):
                document_handlers.invoice_pdf(event)
                document_handlers.invoice_pdf(event)

            described = " → ".join(f"{step} {name}" for step, name in order)
            assert charge == booking.total // 2 == booking.cancellation_charge, described
            assert _net_invoiced(booking) == charge, described
            assert Invoice.objects.filter(booking=booking).count() == issued, described
            current = Invoice.objects.filter(booking=booking, kind="invoice").latest("issued_at")
            assert current.total == booking.total, described
            invoices = Invoice.objects.filter(booking=booking)
            assert Document.objects.filter(invoice__in=invoices).count() == invoices.count(), described


def test_a_booking_never_confirmed_is_never_invoiced(world):
    with tenant_context(world.tenant):
        hold = place_hold(world.soon, {"adult": 1}, "trade", "never", agency=world.agency)
        booking = services.create_booking(
            holds=[hold], lead=LEAD, channel="trade", language="en", agency=world.agency, on_account=True
        )
        _cancel(booking)
        invoice_handlers.cancellation_credit_note(
            OutboxEvent.objects.get(aggregate_id=str(booking.pk), name="booking.cancelled")
        )
        assert not Invoice.objects.filter(booking=booking).exists()


def test_invoices_announce_themselves_for_their_pdf_in_their_own_transaction(world):
    with tenant_context(world.tenant):
        booking, _ = _run(
            world,
            "announced",
            [
                ("change", "booking.confirmed"),
                ("consume", "booking.confirmed"),
                ("change", "booking.modified"),
                ("consume", "booking.modified"),
            ],
        )
        announced = OutboxEvent.objects.filter(aggregate_id=str(booking.pk), name="invoice.issued")
        issued = Invoice.objects.filter(booking=booking).order_by("issued_at")
        assert sorted(
            (event.payload["invoice"], event.payload["kind"], event.payload["number"]) for event in announced
        ) == sorted((str(invoice.pk), invoice.kind, invoice.display_number) for invoice in issued)
        assert [invoice.kind for invoice in issued] == ["invoice", "credit_note", "invoice"]
        assert not Document.objects.filter(booking=booking).exists()  # no PDF until its consumer runs


def test_a_goodwill_credit_before_a_cancellation_still_leaves_the_charge_invoiced(world):
    from bookings.services import invoicing

    with tenant_context(world.tenant):
        booking, _events = _run(
            world, "gw1", [("change", "booking.confirmed"), ("consume", "booking.confirmed")]
        )
        invoicing.issue_credit_note(invoicing.current_invoice(booking), 100, "Goodwill: late pick-up")
        services.cancel_booking(Booking.objects.get(pk=booking.pk), reason="client ill")
        invoice_handlers.cancellation_credit_note(
            OutboxEvent.objects.get(aggregate_id=str(booking.pk), name="booking.cancelled")
        )
        booking.refresh_from_db()
        assert booking.cancellation_charge > 0
        assert _net_invoiced(booking) == booking.cancellation_charge


def test_a_goodwill_credit_is_carried_over_when_a_change_replaces_the_invoice(world):
    from bookings.services import invoicing

    with tenant_context(world.tenant):
        booking, _events = _run(
            world, "gw2", [("change", "booking.confirmed"), ("consume", "booking.confirmed")]
        )
        invoicing.issue_credit_note(invoicing.current_invoice(booking), 100, "Goodwill: late pick-up")
        _add_an_adult(booking)
        modified = OutboxEvent.objects.get(aggregate_id=str(booking.pk), name="booking.modified")
        invoice_handlers.reinvoice(modified)
        invoice_handlers.reinvoice(modified)  # redelivered: nothing more
        booking.refresh_from_db()
        assert _net_invoiced(booking) == booking.total - 100
        assert invoicing.credited_so_far(invoicing.current_invoice(booking)) == 100
