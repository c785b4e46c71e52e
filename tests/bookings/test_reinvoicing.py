"""A re-priced confirmed booking is re-invoiced: the old invoice credited in full, a new one for what is sold now."""

from __future__ import annotations

import pytest

from bookings import services
from bookings.handlers import documents as document_handlers
from bookings.handlers import invoices as handlers
from bookings.models import Document, Invoice
from bookings.services import invoicing
from events.models import OutboxEvent
from tenants.context import tenant_context
from tests.bookings.world import World
from tests.catalogue import make_departure


def _last(booking, name: str) -> OutboxEvent:
    return OutboxEvent.objects.filter(aggregate_id=str(booking.pk), name=name).order_by("-created_at").first()


def _make_pdfs(booking) -> None:
    for event in OutboxEvent.objects.filter(aggregate_id=str(booking.pk), name="invoice.issued"):
        document_handlers.invoice_pdf(event)


@pytest.mark.django_db
def test_changing_the_units_of_an_invoiced_booking_replaces_its_invoice_once(monkeypatch):
    monkeypatch.setattr("bookings.services.documents.render_pdf", lambda template, context: b"%PDF-fake")
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("units", adults=2)
        handlers.issue_invoice(_last(booking, "booking.confirmed"))
        first = invoicing.current_invoice(booking)
        assert first.total == 16000

        services.modify_booking(booking, booking.items.get(), {"adult": 3})
        event = _last(booking, "booking.modified")
        handlers.reinvoice(event)
        handlers.reinvoice(event)  # delivered twice: nothing more
        _make_pdfs(booking)

        credit_note = Invoice.objects.get(kind="credit_note", credits=first)
        second = invoicing.current_invoice(booking)
        assert credit_note.total == -16000
        assert second.pk != first.pk and second.total == 24000 and second.number > credit_note.number
        assert Invoice.objects.filter(booking=booking).count() == 3
        assert (
            Document.objects.filter(booking=booking).exclude(kind="voucher").count() == 3
        )  # each has its PDF

        services.cancel_booking(booking, reason="client ill")  # 30 days ahead: all of it is credited
        handlers.cancellation_credit_note(_last(booking, "booking.cancelled"))
        assert invoicing.credited_so_far(second) == 24000
        assert invoicing.credited_so_far(first) == 16000


@pytest.mark.django_db
def test_a_move_to_another_date_reinvoices_and_a_traveller_change_does_not():
    world = World()
    with tenant_context(world.tenant):
        later = make_departure(world.option, capacity=20, starts_at=world.departure.starts_at.replace(hour=6))
        booking = world.confirmed_booking("move", adults=2)
        handlers.issue_invoice(_last(booking, "booking.confirmed"))
        traveller = booking.travellers.first()

        services.update_travellers(booking, {str(traveller.pk): {"dietary_notes": "vegan"}})
        handlers.reinvoice(_last(booking, "booking.modified"))
        assert Invoice.objects.filter(booking=booking).count() == 1

        services.move_departure(booking, booking.items.get(), later)
        handlers.reinvoice(_last(booking, "booking.modified"))
        current = invoicing.current_invoice(booking)
        assert Invoice.objects.filter(booking=booking).count() == 3
        assert {line["departure"] for line in current.lines if "departure" in line} == {
            later.starts_at.isoformat()
        }


@pytest.mark.django_db
def test_what_is_only_printed_on_the_invoice_changing_later_does_not_reinvoice():
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("renamed", adults=2)
        handlers.issue_invoice(_last(booking, "booking.confirmed"))
        world.tour.title = "A new name for the tour"
        world.tour.save()
        world.departure.__class__.objects.filter(pk=world.departure.pk).update(
            starts_at=world.departure.starts_at.replace(minute=30)
        )

        services.update_travellers(booking, {str(booking.travellers.first().pk): {"dietary_notes": "vegan"}})
        handlers.reinvoice(_last(booking, "booking.modified"))

        assert Invoice.objects.filter(booking=booking).count() == 1


@pytest.mark.django_db
def test_a_change_before_the_invoice_exists_is_invoiced_once_as_the_booking_is_now():
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("early", adults=2)
        services.modify_booking(
            booking, booking.items.get(), {"adult": 1}, remove_travellers=[booking.travellers.first().pk]
        )
        handlers.reinvoice(_last(booking, "booking.modified"))  # ran before the confirmation's consumer
        handlers.issue_invoice(_last(booking, "booking.confirmed"))

        assert list(Invoice.objects.filter(booking=booking).values_list("kind", "total")) == [
            ("invoice", 8000)
        ]
