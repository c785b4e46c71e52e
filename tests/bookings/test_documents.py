"""Invoice, credit-note and voucher PDFs: what they show, made once (vouchers: a version per visible change),
stored encrypted; the consumers that make them, idempotent and aware of the booking's current state.

WeasyPrint compresses its text streams and subsets fonts, so what a document says is checked on the HTML that
goes into it (``documents.invoice_html`` / ``voucher_html``); one real render per kind checks the PDF itself."""

from __future__ import annotations

import datetime as dt
import re
import time
from decimal import Decimal
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connection, connections
from django.template.loader import render_to_string
from django.utils import timezone
from fontTools.misc import timeTools as font_times

from bookings import services
from bookings.handlers import documents as handlers
from bookings.handlers import invoices as invoice_handlers
from bookings.models import Booking, Document, Invoice
from bookings.services import checkin, documents, invoicing
from core import pdf
from events.models import OutboxEvent
from inventory.models import Departure
from tenants.context import tenant_context
from tenants.models import Tenant
from tenants.routing import public_base_url
from tests.bookings.world import World
from tests.workers import wait_until_idle
from tourops.celery import app
from tours.models import PriceList, TaxRate

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_pdf(monkeypatch):
    """Documents "rendered" as their HTML behind a PDF header: what the PDF would say, without WeasyPrint's
    ~0.3 s of CPU per document. Tests of the PDF itself do not use this."""

    def render(template, context):
        return b"%PDF-fake\n" + render_to_string(template, context).encode()

    monkeypatch.setattr(documents, "render_pdf", render)


def _text(html: str) -> str:
    """The HTML's visible text on one line, for "does it say …" assertions."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _event(booking: Booking, name: str) -> OutboxEvent:
    return OutboxEvent.objects.filter(aggregate_id=str(booking.pk), name=name).latest("created_at")


def _make_pdfs(booking: Booking) -> None:
    """Run the PDF consumer for every ``invoice.issued`` of the booking (as the worker would)."""
    for event in OutboxEvent.objects.filter(aggregate_id=str(booking.pk), name="invoice.issued"):
        handlers.invoice_pdf(event)


def _legal_details(world: World) -> None:
    Tenant.objects.filter(pk=world.tenant.pk).update(
        legal_name="Fjord Tours AS",
        legal_address="Bryggen 1\n5003 Bergen\nNorway",
        tax_id="NO 912 345 678 MVA",
        contact_email="hello@fjord.example",
        contact_phone="+47 55 00 00 00",
    )
    world.agency.address = "1 High Street\nLondon"
    world.agency.tax_id = "GB123456789"
    world.agency.save()


def _with_tax(world: World, percent: str, inclusive: bool) -> None:
    tax = TaxRate.objects.create(name="VAT", percent=Decimal(percent), inclusive=inclusive)
    PriceList.objects.update(tax_rate=tax)


def _pdf_is_encrypted_at_rest(document: Document) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT content FROM bookings_document WHERE id = %s", [document.pk])
        stored = bytes(cursor.fetchone()[0])
    return b"%PDF" not in stored and len(stored) > document.size


# --- invoices and credit notes ---------------------------------------------------------------------------------


def test_the_invoice_pdf_is_made_once_and_stored_encrypted(fake_pdf):
    world = World()
    with tenant_context(world.tenant):
        invoice = invoicing.issue_invoice(world.confirmed_booking("a"))

        document = documents.issue_invoice_document(invoice)
        again = documents.issue_invoice_document(invoice)

        assert again.pk == document.pk and Document.objects.count() == 1
        stored = Document.objects.get(pk=document.pk)
        assert stored.content.startswith(b"%PDF") and stored.size == len(stored.content)
        assert (stored.kind, stored.invoice_id, stored.version) == ("invoice", invoice.pk, 1)
        assert stored.filename == f"invoice-{invoice.display_number}.pdf"
        assert _pdf_is_encrypted_at_rest(stored)


def test_the_invoice_shows_seller_agency_booking_lines_and_exclusive_tax():
    world = World()
    with tenant_context(world.tenant):
        _legal_details(world)
        _with_tax(world, "10.00", inclusive=False)
        booking = world.confirmed_booking("a", 2)  # 2 × 80.00 trade + 10 % VAT = 176.00
        Booking.objects.filter(pk=booking.pk).update(agent_reference="AG-778")
        invoice = invoicing.issue_invoice(booking)

        text = _text(documents.invoice_html(invoice))

    for expected in (
        "Fjord Tours AS",
        "Bryggen 1",
        "NO 912 345 678 MVA",
        "hello@fjord.example",
        f"Invoice Number {invoice.display_number}",
        booking.reference,
        "AG-778",
        world.agency.legal_name,
        "1 High Street",
        "GB123456789",
        "Ana Lima",  # the lead traveller, beside the billed agency
        world.tour.title,
        "Adult 2 €80.00 €160.00",
        "Total excluding tax €160.00",
        "VAT (10 %) €16.00",
        "Total €176.00",
        "on account",
    ):
        assert expected in text, expected
    local = world.departure.starts_at.astimezone(ZoneInfo(world.tour.time_zone))
    assert f"{local:%B} {local.day}, {local.year}" in text  # the departure's date where the tour starts
    assert "of which" not in text


def test_inclusive_tax_is_shown_as_part_of_the_total_in_the_bookings_language():
    world = World()
    with tenant_context(world.tenant):
        _with_tax(world, "20.00", inclusive=True)
        booking = world.confirmed_booking("a", 2)  # 160.00, of which VAT 26.67
        Booking.objects.filter(pk=booking.pk).update(language="fr")
        invoice = invoicing.issue_invoice(booking)

        text = _text(documents.invoice_html(invoice))

    assert "160,00 €" in text and "26,67 €" in text  # French number format, from the money filter
    assert "Total excluding tax" not in text
    assert re.search(r"of which VAT \(20 %\) 26,67", text) or re.search(r"VAT \(20 %\) 26,67", text)


def test_the_invoice_does_not_change_when_the_tenant_does_later(fake_pdf):
    world = World()
    with tenant_context(world.tenant):
        _legal_details(world)
        invoice = invoicing.issue_invoice(world.confirmed_booking("a"))
        document = documents.issue_invoice_document(invoice)
        Tenant.objects.filter(pk=world.tenant.pk).update(legal_address="Somewhere else")

        assert documents.issue_invoice_document(invoice).sha256 == document.sha256
        assert Document.objects.get(pk=document.pk).content == document.content


def test_a_credit_note_names_the_invoice_it_credits_and_gives_back_its_share_of_the_tax(fake_pdf):
    world = World()
    with tenant_context(world.tenant):
        _with_tax(world, "10.00", inclusive=False)
        invoice = invoicing.issue_invoice(world.confirmed_booking("a", 2))  # 176.00, tax 16.00

        first = invoicing.issue_credit_note(invoice, 8800, "Half back", details={"refund_percent": 50})
        rest = invoicing.issue_credit_note(invoice, 8800, "The rest")
        document = documents.issue_invoice_document(first)
        text = _text(documents.invoice_html(first))

    assert (first.tax, rest.tax) == (-800, -800)  # together exactly the invoice's tax
    assert document.filename == f"credit-note-{first.display_number}.pdf" and document.kind == "credit_note"
    assert f"Credit note Number {first.display_number}" in text
    assert f"Credits invoice {invoice.display_number}" in text
    assert "50 % of the price refunded" in text
    assert "Total credited -€88.00" in text
    assert "of which VAT (10 %) -€8.00" in text


def test_a_credit_note_with_the_same_source_is_issued_once():
    world = World()
    with tenant_context(world.tenant):
        invoice = invoicing.issue_invoice(world.confirmed_booking("a", 2))
        first = invoicing.issue_credit_note(invoice, 1000, "x", source="booking.cancelled:1")
        again = invoicing.issue_credit_note(invoice, 1000, "x", source="booking.cancelled:1")
        assert again.pk == first.pk and invoice.credit_notes.count() == 1


# --- vouchers --------------------------------------------------------------------------------------------------


def test_the_voucher_shows_the_trip_travellers_and_a_check_in_code():
    world = World()
    with tenant_context(world.tenant):
        _legal_details(world)
        world.tour.meeting_point = "Pier 3, by the ticket office"
        world.tour.save()
        booking = world.confirmed_booking("lima", 2)

        context = documents.voucher_context(booking)
        text = _text(documents.voucher_html(booking))
        token = checkin.check_in_token(booking)
        sheet = checkin.check_in_sheet(context["check_in_code"])

    for expected in (
        "Voucher",
        booking.reference,
        "Fjord Tours AS",
        "+47 55 00 00 00",
        world.tour.title,
        "Pier 3, by the ticket office",
        "2 × Adult",
        "Traveller1 Lima",
        "Traveller2 Lima",
        token,
        world.tour.time_zone,
    ):
        assert expected in text, expected
    assert context["check_in_code"] == token and sheet.booking.pk == booking.pk
    assert context["qr_code"] == documents.qr_code_data_uri(checkin.check_in_url(booking))
    assert context["qr_code"].startswith("data:image/svg+xml")
    assert checkin.check_in_url(booking) == f"{public_base_url(world.tenant)}/check-in/{token}/"


def test_a_voucher_version_is_added_only_when_what_it_shows_changes(fake_pdf):
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("a", 2)
        first = documents.issue_voucher(booking)
        assert documents.issue_voucher(booking).pk == first.pk  # rendering is deterministic

        traveller = booking.travellers.order_by("id").first()
        services.update_travellers(booking, changes={traveller.pk: {"passport_number": "X1234567"}})
        assert documents.issue_voucher(booking).pk == first.pk  # not on the voucher

        services.update_travellers(booking, changes={traveller.pk: {"first_name": "Beatriz"}})
        second = documents.issue_voucher(booking)

        assert (first.version, second.version) == (1, 2)
        assert second.filename == f"voucher-{booking.reference}-v2.pdf"
        assert documents.current_voucher(booking).pk == second.pk
        assert _pdf_is_encrypted_at_rest(second)


def test_a_change_made_while_the_voucher_renders_is_on_the_voucher_stored(monkeypatch):
    """The voucher is rendered before the booking is locked; a change in between is caught under the lock."""
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("a", 2)
        traveller = booking.travellers.order_by("id").first()
        renders = []

        def render(template, context):
            renders.append(template)
            if len(renders) == 1:  # another worker changes the booking during the first render
                services.update_travellers(booking, changes={traveller.pk: {"first_name": "Beatriz"}})
            return b"%PDF-fake\n" + render_to_string(template, context).encode()

        monkeypatch.setattr(documents, "render_pdf", render)
        voucher = documents.issue_voucher(booking)

        assert len(renders) == 2
        assert b"Beatriz" in voucher.content and voucher.version == 1


def test_only_confirmed_bookings_get_a_voucher():
    world = World()
    with tenant_context(world.tenant):
        booking = world.trade_booking("a", 1)
        with pytest.raises(Exception) as refused:
            documents.issue_voucher(booking)
        assert refused.value.code == "not_confirmed"
        assert documents.current_voucher(booking) is None


def test_real_pdfs_of_each_kind_are_made_quickly_and_a_voucher_renders_the_same_bytes_later(monkeypatch):
    world = World()
    with tenant_context(world.tenant):
        _legal_details(world)
        booking = world.confirmed_booking("a", 3)
        invoice = invoicing.issue_invoice(booking)
        credit_note = invoicing.issue_credit_note(invoice, 100, "x")
        pdf.warm_up()  # as every worker process does when it starts: fonts and Pango load once, not per document

        timings = {}
        for kind, make in (
            ("invoice", lambda: documents.issue_invoice_document(invoice)),
            ("credit note", lambda: documents.issue_invoice_document(credit_note)),
            ("voucher", lambda: documents.issue_voucher(booking)),
        ):
            started = time.process_time()
            document = make()
            timings[kind] = time.process_time() - started
            assert document.content.startswith(b"%PDF-") and document.content.rstrip().endswith(b"%%EOF")
        # A day later (as the fonts' "modified" stamp would see it) the same voucher is the same PDF.
        later = time.time() + 86400
        monkeypatch.setattr(font_times, "time", type("Clock", (), {"time": staticmethod(lambda: later)}))
        assert documents.issue_voucher(booking).version == 1

    print("CPU seconds per document:", {kind: round(seconds, 3) for kind, seconds in timings.items()})
    assert max(timings.values()) < 1.0, timings


# --- consumers -------------------------------------------------------------------------------------------------


def test_confirmation_consumers_make_the_invoice_its_pdf_and_the_voucher_once(fake_pdf):
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("a", 2)
        event = _event(booking, "booking.confirmed")

        for _ in range(2):  # a redelivered event changes nothing
            invoice_handlers.issue_invoice(event)
            handlers.voucher(event)
            _make_pdfs(booking)

        invoice = booking.invoices.get()
        kinds = sorted(Document.objects.filter(booking=booking).values_list("kind", "version"))
        assert kinds == [("invoice", 1), ("voucher", 1)]
        assert Document.objects.get(kind="invoice").invoice_id == invoice.pk


def test_a_modification_gives_a_new_voucher_version_while_confirmed(fake_pdf):
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("a", 2)
        handlers.voucher(_event(booking, "booking.confirmed"))
        traveller = booking.travellers.order_by("id").first()
        services.update_travellers(booking, changes={traveller.pk: {"last_name": "Souza"}})

        handlers.voucher(_event(booking, "booking.modified"))

        assert list(booking.documents.filter(kind="voucher").values_list("version", flat=True)) == [1, 2]
        assert "Souza" in documents.voucher_html(booking)


def test_a_cancellation_credits_the_invoice_by_the_terms_once_with_its_pdf(fake_pdf):
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("a", 2)  # 160.00
        invoice = invoicing.issue_invoice(booking)
        # Five days before the start: the 50 % tier.
        Departure.objects.filter(pk=world.departure.pk).update(
            starts_at=timezone.now() + dt.timedelta(days=5, hours=1)
        )
        terms = services.cancellation_terms(Booking.objects.get(pk=booking.pk))
        services.cancel_booking(booking, reason="Client ill")
        event = _event(booking, "booking.cancelled")

        invoice_handlers.cancellation_credit_note(event)
        invoice_handlers.cancellation_credit_note(event)
        _make_pdfs(booking)

        credit_note = invoice.credit_notes.get()
        assert terms.credit == 8000 == event.payload["credit"]
        assert credit_note.total == -8000 and credit_note.lines[0]["refund_percent"] == 50
        assert Document.objects.filter(kind="credit_note").get().invoice_id == credit_note.pk
        assert "50 % of the price refunded" in documents.invoice_html(credit_note)


def test_a_cancellation_credits_no_more_than_is_left_on_the_invoice(fake_pdf):
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("a", 2)  # 160.00, cancelled 30 days ahead: 100 % back
        invoice = invoicing.issue_invoice(booking)
        invoicing.issue_credit_note(invoice, 6000, "Goodwill")
        services.cancel_booking(booking)

        invoice_handlers.cancellation_credit_note(_event(booking, "booking.cancelled"))

        assert sorted(invoice.credit_notes.values_list("total", flat=True)) == [-10000, -6000]


def test_a_booking_cancelled_before_its_consumers_ran_is_invoiced_and_credited_but_gets_no_voucher(fake_pdf):
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("a", 2)  # 160.00, cancelled 30 days ahead: all of it back
        confirmed = _event(booking, "booking.confirmed")
        services.cancel_booking(booking)

        invoice_handlers.cancellation_credit_note(_event(booking, "booking.cancelled"))
        invoice_handlers.issue_invoice(confirmed)
        handlers.voucher(confirmed)
        _make_pdfs(booking)

        invoice = Invoice.objects.get(kind="invoice")
        assert (invoice.total, invoicing.credited_so_far(invoice)) == (16000, 16000)
        assert sorted(Document.objects.values_list("kind", flat=True)) == ["credit_note", "invoice"]


def test_a_voucher_consumer_that_finds_the_booking_cancelled_while_rendering_makes_nothing(
    fake_pdf, monkeypatch
):
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("a", 2)
        real_context = documents.voucher_context

        def cancelled_meanwhile(subject):
            context = real_context(subject)
            if Booking.objects.get(pk=subject.pk).status == Booking.Status.CONFIRMED:
                services.cancel_booking(Booking.objects.get(pk=subject.pk))
            return context

        monkeypatch.setattr(documents, "voucher_context", cancelled_meanwhile)
        handlers.voucher(_event(booking, "booking.confirmed"))

        assert not Document.objects.exists()


# --- end to end, with a real worker ----------------------------------------------------------------------------


@app.task(name="tests.documents.close_connections")
def _close_connections() -> None:
    connections.close_all()


@pytest.fixture(scope="module")
def worker():
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as running:
        yield running
        _close_connections.delay()  # the worker thread's connection must not outlive the test database
        time.sleep(0.5)


def _wait_for_documents(world: World, booking: Booking, kinds: set[str]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with tenant_context(world.tenant):
            if set(Document.objects.filter(booking_id=booking.pk).values_list("kind", flat=True)) >= kinds:
                return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {kinds}")


@pytest.mark.django_db(transaction=True)
def test_through_the_outbox_a_confirmation_and_a_cancellation_leave_their_documents(
    worker, fake_pdf, monkeypatch
):
    from bookings.services import notifications

    monkeypatch.setattr(notifications, "VOUCHER_BACKSTOP_SECONDS", 1)
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("a", 2)

    _wait_for_documents(world, booking, {"invoice", "voucher"})
    with tenant_context(world.tenant):
        services.cancel_booking(Booking.objects.get(pk=booking.pk))
    _wait_for_documents(world, booking, {"credit_note"})

    with tenant_context(world.tenant):
        assert Invoice.objects.filter(booking_id=booking.pk, kind="invoice").count() == 1
        assert Invoice.objects.get(kind="credit_note").total == -booking.total  # 30 days ahead: all back
    wait_until_idle()  # the emails of both events: sent before the test database is flushed
