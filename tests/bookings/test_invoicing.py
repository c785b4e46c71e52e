"""Invoices: gap-free numbers under concurrency, issued once, never changed; credit notes within the invoice."""

from __future__ import annotations

import contextlib

import pytest
from django.db import ProgrammingError, transaction
from django.utils import timezone

from bookings import services
from bookings.handlers import invoices as handlers
from bookings.models import Booking, Invoice
from bookings.services import invoicing
from core.errors import DomainError
from events.models import OutboxEvent
from tenants.context import tenant_context
from tests.bookings.world import World
from tests.races import run_together

YEAR = str(timezone.now().year)


def _confirmed(world, key: str, adults: int = 1) -> Booking:
    booking = world.trade_booking(key, adults)
    return services.confirm_booking(booking)


@pytest.mark.django_db
def test_a_confirmed_booking_is_invoiced_once_with_its_lines_and_tax():
    world = World()
    with tenant_context(world.tenant):
        booking = _confirmed(world, "a", 2)

        invoice = invoicing.issue_invoice(booking)

        assert invoice.display_number == f"{YEAR}-000001"
        assert (invoice.total, invoice.currency) == (booking.total, "EUR")
        assert [line["kind"] for line in invoice.lines] == ["unit"]
        assert invoicing.issue_invoice(booking).pk == invoice.pk
        assert Invoice.objects.count() == 1


@pytest.mark.django_db
def test_the_confirmation_event_consumer_issues_the_invoice():
    world = World()
    with tenant_context(world.tenant):
        booking = _confirmed(world, "a")
        event = OutboxEvent.objects.get(aggregate_id=str(booking.pk), name="booking.confirmed")
        handlers.issue_invoice(event)
        assert booking.invoices.get().kind == "invoice"


@pytest.mark.django_db
def test_only_confirmed_bookings_are_invoiced():
    world = World()
    with tenant_context(world.tenant):
        booking = world.trade_booking("a", 1)
        with pytest.raises(DomainError) as refused:
            invoicing.issue_invoice(booking)
        assert refused.value.code == "not_invoiceable"


@pytest.mark.django_db
def test_invoices_are_never_changed_or_deleted():
    world = World()
    with tenant_context(world.tenant):
        invoice = invoicing.issue_invoice(_confirmed(world, "a"))
        for change in (lambda: Invoice.objects.filter(pk=invoice.pk).update(total=1), invoice.delete):
            with pytest.raises(ProgrammingError), transaction.atomic():
                change()
        assert Invoice.objects.get(pk=invoice.pk).total == invoice.total


@pytest.mark.django_db
def test_credit_notes_reference_the_invoice_and_never_exceed_it():
    world = World()
    with tenant_context(world.tenant):
        invoice = invoicing.issue_invoice(_confirmed(world, "a", 2))  # 160.00

        first = invoicing.issue_credit_note(invoice, 10000, "Cancelled 10 days before: 100 % tier")
        with pytest.raises(DomainError) as refused:
            invoicing.issue_credit_note(invoice, 6001, "more")
        with pytest.raises(DomainError) as bad:
            invoicing.issue_credit_note(invoice, -5, "negative")

        assert (first.kind, first.total, first.credits_id) == ("credit_note", -10000, invoice.pk)
        assert first.display_number == f"{YEAR}-000002"
        assert refused.value.code == "credit_exceeds_invoice"
        assert "amount" in bad.value.fields
        assert invoicing.issue_credit_note(invoice, 6000, "rest").total == -6000


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_confirmations_get_numbers_one_to_fifty_without_gaps():
    world = World(credit_limit=10_000_000)
    with tenant_context(world.tenant):
        world.departure.__class__.objects.filter(pk=world.departure.pk).update(capacity=100)
        bookings = [_confirmed(world, f"b{n}") for n in range(50)]

    def invoice_or_fail(index: int) -> list[object]:
        if index < len(bookings):
            with tenant_context(world.tenant):
                invoicing.issue_invoice(bookings[index])
        else:  # one more takes a number, then fails: its number must go back
            with contextlib.suppress(RuntimeError), tenant_context(world.tenant), transaction.atomic():
                invoicing.next_number(YEAR)
                raise RuntimeError("the PDF could not be made")
        return []

    errors = [repr(error) for error in run_together(invoice_or_fail, threads=len(bookings) + 1)]

    assert errors == []
    with tenant_context(world.tenant):
        numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == list(range(1, 51))
