"""Bookings in the back office: the list (columns, filters, search by email, bounded queries), the booking page
(documents, emails, event history) and its actions, each calling one service, per role."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bookings import services
from bookings.models import Booking, Document, Notification
from bookings.services import Lead
from events.models import DeadLetter, OutboxEvent, ProcessedEvent
from inventory.models import Departure
from inventory.services import place_hold
from tenants.context import tenant_context
from tenants.models import AuditEvent
from tests.backoffice.conftest import signed_in
from tests.bookings.world import World
from tests.catalogue import make_departure

CHANGELIST = "/admin/bookings/booking/"


@pytest.fixture
def world(db):
    return World()


@pytest.fixture
def staff(world):
    """``staff(role)`` → a signed-in back-office client of the world's tenant."""
    return lambda role: signed_in(world.tenant, role)[1]


def _page(url: str, booking: Booking) -> str:
    return f"{CHANGELIST}{booking.pk}/{url}"


def _action(booking: Booking, action: str) -> str:
    return _page(f"action/{action}/", booking)


def _retail_booking(
    world, key: str, *, departure=None, adults: int = 1, email: str = "bo@example.com"
) -> Booking:
    """An on-hold retail booking (its price is due: it cannot be confirmed before it is paid)."""
    hold = place_hold(departure or world.fresh_departure(), {"adult": adults}, "retail", key)
    return services.create_booking(
        holds=[hold],
        lead=Lead(name="Bo Berg", email=email, phone="+47 900 00 000"),
        channel="retail",
        language="en",
    )


def _fresh(booking: Booking) -> Booking:
    return Booking.objects.get(pk=booking.pk)


def _messages(response) -> str:
    return " ".join(str(message) for message in response.context["messages"])


def _audited(booking: Booking) -> list[dict]:
    return list(AuditEvent.objects.filter(target_id=str(booking.pk)).values_list("changes", flat=True))


# --- the list ---------------------------------------------------------------------------------------------------


def test_the_list_shows_each_booking_with_its_lead_first_departure_and_money(world, staff):
    with tenant_context(world.tenant):
        confirmed = world.confirmed_booking("a", 2)  # trade: 2 × 80.00, on account, nothing paid
        retail = _retail_booking(world, "b")
        local_date = world.departure.local_date

    response = staff("sales").get(CHANGELIST)

    assert response.status_code == 200
    page = response.content.decode()
    row = re.search(rf"<tr>.*?{confirmed.reference}.*?</tr>", page, re.S).group(0)
    assert "Confirmed" in row and "Ana Lima" in row and str(world.agency) in row
    assert row.count("€160.00") == 2  # total and balance
    assert local_date.strftime("%b. %-d, %Y") in row or local_date.strftime("%B %-d, %Y") in row
    assert retail.reference in page and "Bo Berg" in page and "€100.00" in page


def test_the_list_filters_by_status_channel_and_departure_period(world, staff):
    with tenant_context(world.tenant):
        soon = make_departure(world.option, capacity=10, starts_at=timezone.now() + dt.timedelta(days=3))
        later = world.confirmed_booking("later", 1)  # the world's departure, 30 days ahead
        early = _retail_booking(world, "soon", departure=soon)
        gone = make_departure(world.option, capacity=10, starts_at=timezone.now() - dt.timedelta(days=3))
        past = world.confirmed_booking("past", 1)
        # The departure has run: the booking's item is pointed at it directly (no service books the past).
        past.items.update(departure=gone)
    client = staff("read_only")

    def listed(query: str) -> set[str]:
        response = client.get(f"{CHANGELIST}?{query}")
        assert response.status_code == 200, query
        return {booking.reference for booking in response.context["cl"].result_list}

    assert listed("status__exact=confirmed") == {later.reference, past.reference}
    assert listed("channel__exact=retail") == {early.reference}
    assert listed("departs=next7") == {early.reference}
    assert listed("departs=next30") == {early.reference, later.reference}
    assert listed("departs=past") == {past.reference}
    assert listed(f"departs_from={soon.local_date}&departs_to={soon.local_date}") == {early.reference}
    assert listed(f"departs_from={world.departure.local_date}") == {later.reference}
    assert listed(f"departs_to={gone.local_date}") == {past.reference}
    assert listed("departs=next30&channel__exact=trade") == {later.reference}
    # A malformed date is not an error page: the admin shows the unfiltered list with its error flag.
    assert client.get(f"{CHANGELIST}?departs_from=soon").status_code == 302


def test_the_list_finds_a_booking_by_reference_agent_reference_or_exact_lead_email(world, staff):
    with tenant_context(world.tenant):
        ana = world.confirmed_booking("a", 1)  # lead ana@example.com
        Booking.objects.filter(pk=ana.pk).update(agent_reference="AG-7781")
        bo = _retail_booking(world, "b", email="Bo.Berg@Example.com")
    client = staff("sales")

    def found(term: str) -> set[str]:
        response = client.get(CHANGELIST, {"q": term})
        assert response.status_code == 200
        return {booking.reference for booking in response.context["cl"].result_list}

    assert found(ana.reference) == {ana.reference}
    assert found(ana.reference.lower()) == {ana.reference}
    assert found("AG-7781") == {ana.reference}
    assert found("ana@example.com") == {ana.reference}
    assert found("  bo.berg@example.COM ") == {bo.reference}  # normalised like the stored index
    assert found("example.com") == set()  # the address is encrypted: exact matches only
    assert found("nobody@example.com") == set()


def test_the_list_uses_the_same_number_of_queries_for_3_or_30_bookings(world, staff):
    client = staff("sales")
    with tenant_context(world.tenant):
        roomy = make_departure(world.option, capacity=60, starts_at=timezone.now() + dt.timedelta(days=20))
        for n in range(3):
            _retail_booking(world, f"q{n}", departure=roomy)
    client.get(CHANGELIST)  # warm the session and permission caches

    with CaptureQueriesContext(connection) as few:
        assert client.get(CHANGELIST).status_code == 200
    with tenant_context(world.tenant):
        for n in range(3, 30):
            booking = (
                world.trade_booking(f"q{n}", 1) if n % 2 else _retail_booking(world, f"q{n}", departure=roomy)
            )
            assert booking.pk
    with CaptureQueriesContext(connection) as many:
        response = client.get(CHANGELIST)
    assert response.status_code == 200 and len(response.context["cl"].result_list) == 30

    assert len(many) == len(few), [query["sql"] for query in many.captured_queries]
    assert len(many) <= 16, "\n".join(q["sql"][:200] for q in many.captured_queries)


# --- the booking page ------------------------------------------------------------------------------------------


def test_the_booking_page_shows_documents_emails_and_the_event_history(world, staff):
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("a", 2)
        pdf = b"%PDF-1.7 voucher of " + booking.reference.encode()
        voucher = Document.objects.create(
            booking=booking,
            kind=Document.Kind.VOUCHER,
            filename=f"voucher-{booking.reference}.pdf",
            content=pdf,
            sha256=hashlib.sha256(pdf).hexdigest(),
            size=len(pdf),
        )
        Notification.objects.create(
            booking=booking,
            kind=Notification.Kind.CONFIRMATION,
            key="evt-1",
            recipient="ana@example.com",
            language="en",
            subject="Your booking is confirmed",
            status=Notification.Status.FAILED,
            attempts=3,
            last_error="SMTP 550 mailbox unavailable",
        )
        confirmed = OutboxEvent.objects.get(aggregate_id=str(booking.pk), name="booking.confirmed")
        ProcessedEvent.objects.create(event=confirmed, consumer="bookings.issue_invoice")
        DeadLetter.objects.create(
            event=confirmed,
            consumer="bookings.issue_voucher",
            error="RuntimeError: fonts missing",
            attempts=4,
        )
        other = world.confirmed_booking("other", 1)
    client = staff("read_only")

    response = client.get(_page("change/", booking))

    assert response.status_code == 200
    page = response.content.decode()
    for text in (
        "Traveller1",  # travellers inline
        "Not checked in",
        voucher.filename,
        "Booking confirmation",
        "SMTP 550 mailbox unavailable",
        "Failed",
        "booking.initiated",
        "booking.confirmed",
        "bookings.issue_invoice",
        "Failed: bookings.issue_voucher after 4 attempts",
        "RuntimeError: fonts missing",
        f"&quot;reference&quot;: &quot;{booking.reference}&quot;",
    ):
        assert text in page, text
    assert other.reference not in page  # only this booking's events
    download = _page(f"documents/{voucher.pk}/", booking)
    assert f'href="{download}"' in page

    file = client.get(download)
    assert file.status_code == 200 and file.content == pdf
    assert file["Content-Type"] == "application/pdf"
    assert f'filename="{voucher.filename}"' in file["Content-Disposition"]
    assert "no-store" in file["Cache-Control"]
    assert client.get(_page(f"documents/{voucher.pk}/", other)).status_code == 404


def test_read_only_and_guide_users_see_no_action_buttons_and_are_refused_posting(world, staff):
    with tenant_context(world.tenant):
        booking = world.trade_booking("a", 1)
    for role in ("read_only", "guide"):
        client = staff(role)
        page = client.get(_page("change/", booking)).content.decode()
        assert "booking-action" not in page, role
        for action, data in [
            ("confirm", {}),
            ("cancel", {"reason": "x"}),
            ("resend", {"kind": "confirmation"}),
            ("payment", {"amount": "1", "method": "cash"}),
        ]:
            assert client.get(_action(booking, action)).status_code == 403, (role, action)
            assert client.post(_action(booking, action), data).status_code == 403, (role, action)
    with tenant_context(world.tenant):
        assert _fresh(booking).status == Booking.Status.ON_HOLD


def test_buttons_follow_the_status_and_the_role(world, staff):
    with tenant_context(world.tenant):
        on_hold = world.trade_booking("a", 1)
        retail = _retail_booking(world, "b")
        cancelled = services.cancel_booking(world.trade_booking("c", 1), reason="test")

    def buttons(client, booking) -> set[str]:
        page = client.get(_page("change/", booking)).content.decode()
        return set(re.findall(r'class="booking-action" data-action="(\w+)"', page))

    sales, finance = staff("sales"), staff("finance")
    assert buttons(sales, on_hold) == {"confirm", "cancel", "move", "resend"}
    assert buttons(finance, retail) == {"payment"}
    assert buttons(staff("manager"), retail) == {"confirm", "cancel", "move", "resend", "payment"}
    assert buttons(sales, cancelled) == {"resend"}
    response = sales.get(_action(cancelled, "confirm"))
    assert response.status_code == 302
    followed = sales.get(response["Location"])
    assert "“Confirm” is not possible now" in _messages(followed)


# --- actions ------------------------------------------------------------------------------------------------------


def test_confirm_runs_the_service_and_audits_it(world, staff):
    with tenant_context(world.tenant):
        booking = world.trade_booking("a", 2)
    client = staff("sales")

    response = client.post(_action(booking, "confirm"), {"reason": "Agency called"}, follow=True)

    assert f"Booking {booking.reference} is confirmed." in _messages(response)
    with tenant_context(world.tenant):
        booking = _fresh(booking)
        assert booking.status == Booking.Status.CONFIRMED
        assert booking.status_history.last().reason == "Agency called"
        assert {"status": ["on_hold", "confirmed"]} in _audited(booking)


def test_a_page_that_fails_after_its_change_keeps_nothing_of_it(world, staff, monkeypatch):
    """Found by a probe: the request's transaction committed what a view had written before it failed (Django
    turns the exception into the 500 response inside it)."""
    with tenant_context(world.tenant):
        booking = world.trade_booking("a", 2)
    client = staff("sales")
    client.raise_request_exception = False

    def fails(*args, **kwargs):
        raise RuntimeError("after the change")

    monkeypatch.setattr("portals.backoffice.bookings.redirect", fails)  # once the booking is confirmed
    response = client.post(_action(booking, "confirm"), {"reason": "Agency called"})

    assert response.status_code == 500
    with tenant_context(world.tenant):
        assert _fresh(booking).status == Booking.Status.ON_HOLD
        assert _audited(booking) == []


def test_confirm_refused_by_the_service_changes_nothing_and_says_why(world, staff):
    with tenant_context(world.tenant):
        booking = _retail_booking(world, "a")  # €100.00 due

    response = staff("sales").post(_action(booking, "confirm"), {"reason": ""})

    assert response.status_code == 200
    assert "still due; take the payment first" in _messages(response)
    assert "still due; take the payment first" in response.content.decode()  # shown on the kept form
    with tenant_context(world.tenant):
        assert _fresh(booking).status == Booking.Status.ON_HOLD
        assert not booking.status_history.filter(to_status="confirmed").exists()
        assert _audited(booking) == []


def test_cancel_shows_the_terms_needs_a_reason_and_cancels(world, staff):
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("a", 2)
    client = staff("sales")

    form = client.get(_action(booking, "cancel"))
    assert form.status_code == 200
    page = form.content.decode()
    assert 'id="cancellation-terms"' in page and "100 %" in page and "€160.00" in page
    assert 'name="refundable"' not in page  # sales may not override the policy

    missing = client.post(_action(booking, "cancel"), {"reason": "  "})
    assert missing.status_code == 200 and missing.context["form"].errors["reason"]
    with tenant_context(world.tenant):
        assert _fresh(booking).status == Booking.Status.CONFIRMED

    done = client.post(_action(booking, "cancel"), {"reason": "Client ill", "refundable": "0"}, follow=True)
    assert f"Booking {booking.reference} is cancelled." in _messages(done)
    with tenant_context(world.tenant):
        assert _fresh(booking).status == Booking.Status.CANCELLED
        event = OutboxEvent.objects.get(aggregate_id=str(booking.pk), name="booking.cancelled")
        assert (
            event.payload["refundable"] == event.payload["policy_refundable"]
        )  # the sales field was ignored
        assert {"status": ["confirmed", "cancelled"], "reason": [None, "Client ill"]} in _audited(booking)


def test_a_manager_overrides_the_refundable_amount_within_what_was_paid(world, staff):
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("a", 2)
        Booking.objects.filter(pk=booking.pk).update(paid=16000)
    client = staff("manager")
    assert 'name="refundable"' in client.get(_action(booking, "cancel")).content.decode()

    too_much = client.post(_action(booking, "cancel"), {"reason": "Goodwill", "refundable": "200.00"})
    assert too_much.status_code == 200
    assert "between 0 and what was paid" in _messages(too_much)
    with tenant_context(world.tenant):
        assert _fresh(booking).status == Booking.Status.CONFIRMED

    three_decimals = client.post(_action(booking, "cancel"), {"reason": "Goodwill", "refundable": "1.005"})
    assert three_decimals.context["form"].errors["refundable"]

    client.post(_action(booking, "cancel"), {"reason": "Goodwill", "refundable": "120.50"})
    with tenant_context(world.tenant):
        assert _fresh(booking).status == Booking.Status.CANCELLED
        event = OutboxEvent.objects.get(aggregate_id=str(booking.pk), name="booking.cancelled")
        assert event.payload["refundable"] == 12050


def test_move_lists_other_dates_with_free_seats_and_moves_the_item(world, staff):
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("a", 2)
        item = booking.items.get()
        starts = world.departure.starts_at + dt.timedelta(days=1)
        roomy = make_departure(world.option, capacity=12, starts_at=starts)
        tight = make_departure(world.option, capacity=1, starts_at=starts + dt.timedelta(days=1))
        closed = make_departure(
            world.option, capacity=9, starts_at=starts + dt.timedelta(days=2), status=Departure.Status.CLOSED
        )
    client = staff("sales")

    page = client.get(_action(booking, "move")).content.decode()
    assert f'value="{item.pk}:{roomy.pk}"' in page and "12 free" in page
    assert f'value="{item.pk}:{tight.pk}"' in page and "1 free" in page
    assert str(closed.pk) not in page and f"{item.pk}:{world.departure.pk}" not in page

    refused = client.post(_action(booking, "move"), {"target": f"{item.pk}:{tight.pk}"})
    assert refused.status_code == 200 and _messages(refused)
    with tenant_context(world.tenant):
        assert booking.items.get().departure_id == world.departure.pk
        assert Departure.objects.get(pk=tight.pk).sold == 0

    moved = client.post(
        _action(booking, "move"), {"target": f"{item.pk}:{roomy.pk}", "reason": "Asked"}, follow=True
    )
    assert "moved to" in _messages(moved)
    with tenant_context(world.tenant):
        assert booking.items.get().departure_id == roomy.pk
        assert Departure.objects.get(pk=roomy.pk).sold == 2
        assert Departure.objects.get(pk=world.departure.pk).sold == 0
        assert any("departure" in changes for changes in _audited(booking))

    forged = client.post(_action(booking, "move"), {"target": f"{item.pk}:{closed.pk}"})
    assert forged.status_code == 200 and forged.context["form"].errors["target"]


def test_resend_queues_the_email_again_or_says_why_not(world, staff):
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("a", 1)
    client = staff("sales")

    refused = client.post(_action(booking, "resend"), {"kind": "cancellation"})
    assert refused.status_code == 200
    assert "cannot be sent" in _messages(refused)
    with tenant_context(world.tenant):
        assert not Notification.objects.filter(booking=booking).exists()

    done = client.post(_action(booking, "resend"), {"kind": "confirmation"}, follow=True)
    assert "email is on its way again" in _messages(done)
    with tenant_context(world.tenant):
        sent = Notification.objects.get(booking=booking)
        assert sent.kind == "confirmation" and sent.key.startswith("resend-")


def test_finance_records_an_offline_payment_and_sales_may_not(world, staff):
    with tenant_context(world.tenant):
        booking = _retail_booking(world, "a", adults=2)  # €200.00 due
    assert (
        staff("sales").post(_action(booking, "payment"), {"amount": "50", "method": "cash"}).status_code
        == 403
    )
    client = staff("finance")

    over = client.post(_action(booking, "payment"), {"amount": "250.00", "method": "cash", "reference": ""})
    assert over.status_code == 200 and "more than the balance" in _messages(over)
    no_reference = client.post(_action(booking, "payment"), {"amount": "50", "method": "bank_transfer"})
    assert "bank's reference" in _messages(no_reference)
    with tenant_context(world.tenant):
        assert _fresh(booking).paid == 0

    done = client.post(
        _action(booking, "payment"),
        {"amount": "120.50", "method": "bank_transfer", "reference": "TRF-1"},
        follow=True,
    )
    assert "Payment of €120.50 recorded" in _messages(done)
    with tenant_context(world.tenant):
        assert _fresh(booking).paid == 12050


def test_another_tenants_booking_and_documents_are_not_found(world, staff):
    other = World()
    with tenant_context(other.tenant):
        theirs = other.trade_booking("theirs", 1)
        pdf = b"%PDF-1.7"
        document = Document.objects.create(
            booking=theirs, kind="voucher", filename="v.pdf", content=pdf, sha256="0" * 64, size=len(pdf)
        )
    client = staff("manager")

    assert client.get(_action(theirs, "confirm")).status_code == 404
    assert client.post(_action(theirs, "confirm"), {"reason": ""}).status_code == 404
    assert client.get(_page(f"documents/{document.pk}/", theirs)).status_code == 404
    assert client.get(_action(theirs, "unknown")).status_code == 404
    with tenant_context(other.tenant):
        assert _fresh(theirs).status == Booking.Status.ON_HOLD


def test_guides_do_not_get_the_agency_filter_that_would_list_partner_names(world, staff):
    assert str(world.agency) not in staff("guide").get("/admin/bookings/booking/").content.decode()
    assert str(world.agency) in staff("sales").get("/admin/bookings/booking/").content.decode()
