"""The traveller's manage-booking pages on the retail site: find my booking (throttled), the signed link, documents,
cancelling within the rules, traveller details until the cut-off."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.utils import formats, timezone, translation

from bookings import services
from bookings.links import booking_for_manage_token, manage_token
from bookings.models import Booking, Document
from bookings.services import TravellerDetails
from bookings.services.invoicing import issue_invoice
from core.money import Money
from inventory.models import Departure
from portals.retail.throttle import LOOKUP_LIMIT
from tenants.context import tenant_context
from tenants.models import AuditEvent
from tests.bookings.world import LEAD, World
from tests.factories import host_of

NOT_FOUND = "We found no booking with this reference and email address."


def _client(world: World, **extra) -> Client:
    client = Client(**extra)
    client.defaults["HTTP_HOST"] = host_of(world.tenant)
    return client


def _retail_booking(world: World, key: str, *, language: str = "en", travellers=(), units=None) -> Booking:
    """A paid, confirmed retail booking (call inside the tenant's context)."""
    booking = services.create_booking(
        holds=[world.hold(key, units or {"adult": 2})],
        lead=LEAD,
        channel="retail",
        language=language,
        travellers=list(travellers),
    )
    Booking.objects.filter(pk=booking.pk).update(paid=booking.total)
    return services.confirm_booking(Booking.objects.get(pk=booking.pk))


def _move_departure(world: World, starts_in: dt.timedelta) -> None:
    starts_at = timezone.now() + starts_in
    Departure.objects.filter(pk=world.departure.pk).update(
        starts_at=starts_at, ends_at=starts_at + dt.timedelta(hours=4)
    )


def _page(world: World, booking: Booking, suffix: str = "") -> str:
    with tenant_context(world.tenant):
        return f"/booking/{manage_token(booking)}/{suffix}"


def _names(world: World, location: str, booking: Booking) -> bool:
    """Whether ``location`` is the manage page of ``booking`` (tokens carry the second they were signed in, so
    two links to one booking may differ)."""
    match = re.fullmatch(r"/booking/([^/]+)/", location)
    with tenant_context(world.tenant):
        return match is not None and booking_for_manage_token(match.group(1)) == booking


def _document(booking: Booking, content: bytes, version: int = 1, invoice=None) -> Document:
    return Document.objects.create(
        booking=booking,
        kind=Document.Kind.INVOICE if invoice else Document.Kind.VOUCHER,
        invoice=invoice,
        version=version,
        filename=f"{'invoice' if invoice else 'voucher'}-{booking.reference}-v{version}.pdf",
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
    )


def _without_values(response) -> str:
    """The page without what the visitor typed and the CSRF token: what differs only by chance."""
    return re.sub(r'value="[^"]*"', "", response.content.decode())


# --- find my booking ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_find_my_booking_redirects_to_the_signed_link():
    world = World()
    with tenant_context(world.tenant):
        booking = _retail_booking(world, "find")
    client = _client(world)

    assert client.get("/booking/").status_code == 200
    response = client.post("/booking/", {"reference": booking.reference.lower(), "email": "ANA@example.com"})

    assert response.status_code == 302
    assert _names(world, response["Location"], booking)
    assert booking.reference in client.get(response["Location"]).content.decode()


@pytest.mark.django_db
def test_a_wrong_email_and_a_wrong_reference_get_the_same_answer():
    world = World()
    with tenant_context(world.tenant):
        booking = _retail_booking(world, "find")
    client = _client(world)

    wrong_email = client.post("/booking/", {"reference": booking.reference, "email": "eve@example.com"})
    wrong_reference = client.post("/booking/", {"reference": "ZZZZZZZZ", "email": "ana@example.com"})

    assert wrong_email.status_code == wrong_reference.status_code == 400
    for response in (wrong_email, wrong_reference):
        assert NOT_FOUND in response.content.decode()
    assert _without_values(wrong_email) == _without_values(wrong_reference)


@pytest.mark.django_db
def test_find_my_booking_is_throttled_per_address_and_per_reference():
    world = World()
    with tenant_context(world.tenant):
        booking = _retail_booking(world, "find")
    client = _client(world)
    for attempt in range(LOOKUP_LIMIT):
        response = client.post("/booking/", {"reference": f"AAAAAA{attempt:02d}", "email": "ana@example.com"})
        assert response.status_code == 400

    refused = client.post("/booking/", {"reference": booking.reference, "email": "ana@example.com"})
    assert refused.status_code == 429 and refused["Retry-After"] == "900"
    assert "Too many attempts" in refused.content.decode()

    # One reference tried from many addresses is refused too (the refused attempt above counted for it).
    for attempt in range(LOOKUP_LIMIT - 1):
        response = client.post(
            "/booking/",
            {"reference": booking.reference, "email": f"guess{attempt}@example.com"},
            REMOTE_ADDR=f"198.51.100.{attempt + 1}",
        )
        assert response.status_code == 400
    refused = client.post(
        "/booking/", {"reference": booking.reference, "email": "ana@example.com"}, REMOTE_ADDR="192.0.2.77"
    )
    assert refused.status_code == 429


# --- the booking page -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_booking_page_shows_the_booking_with_private_headers():
    world = World()
    with tenant_context(world.tenant):
        booking = _retail_booking(world, "page", travellers=[TravellerDetails("adult", "Ana", "Lima")])
        world.tour.meeting_point = "Praça do Comércio, under the arch"
        world.tour.save(update_fields=["meeting_point"])

    response = _client(world).get(_page(world, booking))

    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Robots-Tag"] == "noindex"
    page = response.content.decode()
    local_start = world.departure.starts_at.astimezone(ZoneInfo("Europe/Lisbon"))
    for expected in (
        booking.reference,
        "Confirmed",
        world.tour.title,
        world.option.name,
        "Praça do Comércio, under the arch",
        formats.date_format(local_start, "TIME_FORMAT"),
        "Europe/Lisbon",
        "2 × Adult",
        "Ana Lima",
        Money(20000, "EUR").format("en"),
        "Cancel this booking",
    ):
        assert expected in page, expected


@pytest.mark.django_db
def test_a_french_booking_is_shown_in_french():
    world = World()
    with tenant_context(world.tenant):
        booking = _retail_booking(world, "fr", language="fr")

    response = _client(world).get(_page(world, booking))

    local_start = world.departure.starts_at.astimezone(ZoneInfo("Europe/Lisbon"))
    with translation.override("fr"):
        french_date = formats.date_format(local_start, "DATE_FORMAT")
        french_total = Money(20000, "EUR").format("fr")
    page = response.content.decode()
    assert french_date in page and french_total in page
    assert response["Content-Language"] == "fr" and 'lang="fr"' in page


@pytest.mark.django_db
def test_a_tampered_token_or_another_tenants_token_is_not_found():
    world, other = World(), World()
    with tenant_context(world.tenant):
        booking = _retail_booking(world, "mine")
    with tenant_context(other.tenant):
        foreign = _retail_booking(other, "theirs")
    token = _page(world, booking).split("/")[2]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    client = _client(world)

    assert client.get(f"/booking/{tampered}/").status_code == 404
    assert client.get(f"/booking/{tampered}/cancel/").status_code == 404
    assert client.get(_page(other, foreign)).status_code == 404  # valid, but for the other tenant's site
    assert client.post(_page(other, foreign, "cancel/")).status_code == 404
    with tenant_context(other.tenant):
        assert Booking.objects.get(pk=foreign.pk).status == "confirmed"


# --- documents ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_documents_are_listed_and_downloaded_only_from_their_booking():
    world = World()
    with tenant_context(world.tenant):
        booking = _retail_booking(world, "docs")
        other = _retail_booking(world, "other")
        old = _document(booking, b"%PDF-1.7 old voucher", version=1)
        latest = _document(booking, b"%PDF-1.7 new voucher", version=2)
        invoice = issue_invoice(booking)
        invoice_pdf = _document(booking, b"%PDF-1.7 invoice", invoice=invoice)
        foreign = _document(other, b"%PDF-1.7 someone else")
    client = _client(world)

    page = client.get(_page(world, booking)).content.decode()
    assert f"/documents/{latest.pk}/" in page and f"/documents/{old.pk}/" not in page
    assert f"/documents/{invoice_pdf.pk}/" in page and f"Invoice {invoice.display_number}" in page

    response = client.get(_page(world, booking, f"documents/{latest.pk}/"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{latest.filename}"'
    assert response.content == b"%PDF-1.7 new voucher"
    assert response["Cache-Control"] == "private, no-store"

    assert client.get(_page(world, booking, f"documents/{foreign.pk}/")).status_code == 404
    assert client.get(_page(world, booking, "documents/not-a-uuid/")).status_code == 404


@pytest.mark.django_db
def test_a_trade_booking_shows_the_traveller_neither_the_agencys_price_nor_its_invoices():
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("trade-page", adults=2)  # on account, at the trade price
        assert (booking.total, booking.on_account) == (16000, True)
        voucher = _document(booking, b"%PDF-1.7 voucher")
        invoice = issue_invoice(booking)
        invoice_pdf = _document(booking, b"%PDF-1.7 the agency's invoice", invoice=invoice)
    client = _client(world)

    page = client.get(_page(world, booking)).content.decode()

    assert "Your travel agent handles payment and invoices" in page
    for hidden in (
        Money(16000, "EUR").format("en"),
        "Balance due",
        invoice.display_number,
        str(invoice_pdf.pk),
    ):
        assert hidden not in page, hidden
    assert f"/documents/{voucher.pk}/" in page
    assert client.get(_page(world, booking, f"documents/{voucher.pk}/")).status_code == 200
    assert client.get(_page(world, booking, f"documents/{invoice_pdf.pk}/")).status_code == 404
    cancel = client.get(_page(world, booking, "cancel/")).content.decode()
    assert "travel agent" in cancel and Money(16000, "EUR").format("en") not in cancel


@pytest.mark.django_db
def test_a_booking_the_office_made_for_an_agency_is_a_trade_booking_on_the_traveller_pages():
    world = World()
    with tenant_context(world.tenant):
        booking = _retail_booking(world, "office-for-agency")
        Booking.objects.filter(pk=booking.pk).update(channel="back_office", agency=world.agency)
        invoice_pdf = _document(booking, b"%PDF-1.7 invoice", invoice=issue_invoice(booking))
    client = _client(world)

    page = client.get(_page(world, booking)).content.decode()

    assert "Your travel agent handles payment" in page and Money(20000, "EUR").format("en") not in page
    assert "Cancel this booking" not in page and "travel agent: please contact them to cancel" in page
    assert client.get(_page(world, booking, f"documents/{invoice_pdf.pk}/")).status_code == 404
    assert client.post(_page(world, booking, "cancel/")).status_code == 409
    with tenant_context(world.tenant):
        assert Booking.objects.get(pk=booking.pk).status == "confirmed"


# --- cancelling ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_traveller_sees_the_cost_then_cancels_and_the_seats_go_back():
    world = World()
    with tenant_context(world.tenant):
        _move_departure(world, dt.timedelta(days=5))  # the 50 % tier
        booking = _retail_booking(world, "cancel")
        assert world.fresh_departure().sold == 2
    client = _client(world, enforce_csrf_checks=True)

    response = client.get(_page(world, booking, "cancel/"))
    page = response.content.decode()
    assert response.status_code == 200 and response["Referrer-Policy"] == "same-origin"
    assert Money(10000, "EUR").format("en") in page  # charge = refundable = half of the 200.00 paid
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)

    assert client.post(_page(world, booking, "cancel/")).status_code == 403  # no CSRF token
    response = client.post(_page(world, booking, "cancel/"), {"csrfmiddlewaretoken": csrf}, follow=True)

    assert response.redirect_chain[0][1] == 302 and _names(world, response.redirect_chain[0][0], booking)
    assert "Your booking is cancelled" in response.content.decode()
    with tenant_context(world.tenant):
        booking.refresh_from_db()
        departure = world.fresh_departure()
        assert booking.status == "cancelled"
        assert booking.status_history.last().reason == "Cancelled by the traveller online"
        assert departure.sold == 0 and departure.held == 0


@pytest.mark.django_db
def test_a_trade_booking_is_cancelled_by_the_travel_agent_not_online():
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("trade")
    client = _client(world)

    assert "travel agent" in client.get(_page(world, booking, "cancel/")).content.decode()
    response = client.post(_page(world, booking, "cancel/"))

    assert response.status_code == 409 and "travel agent" in response.content.decode()
    with tenant_context(world.tenant):
        assert Booking.objects.get(pk=booking.pk).status == "confirmed"
        assert world.fresh_departure().sold == 2


@pytest.mark.django_db
def test_no_online_cancellation_once_the_tour_has_started_or_when_already_cancelled():
    world = World()
    with tenant_context(world.tenant):
        started = _retail_booking(world, "started")
        _move_departure(world, -dt.timedelta(hours=1))
    client = _client(world)

    response = client.post(_page(world, started, "cancel/"))

    assert response.status_code == 409 and "already started" in response.content.decode()
    with tenant_context(world.tenant):
        assert Booking.objects.get(pk=started.pk).status == "confirmed"
        _move_departure(world, dt.timedelta(days=30))
        services.cancel_booking(Booking.objects.get(pk=started.pk))
    response = client.post(_page(world, started, "cancel/"))
    assert response.status_code == 409 and "cannot be cancelled" in response.content.decode()


# --- traveller details --------------------------------------------------------------------------------------------


def _traveller_form(page: str) -> dict:
    """The form's current values, as a browser would send them back."""
    data = {}
    for name, value in re.findall(r'<input type="(?:text|date|hidden)" name="([^"]+)" value="([^"]*)"', page):
        data[name] = value
    for name in re.findall(r'<input type="(?:text|date)" name="([^"]+)"(?! value)', page):
        data.setdefault(name, "")
    for name, body in re.findall(r'<textarea name="([^"]+)"[^>]*>\n?(.*?)</textarea>', page, re.S):
        data[name] = body
    for name, options in re.findall(r'<select name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', options)
        data[name] = chosen.group(1) if chosen else ""
    return data


@pytest.mark.django_db
def test_travellers_update_their_details_and_name_the_open_seat_before_the_cutoff():
    world = World()
    with tenant_context(world.tenant):
        booking = _retail_booking(
            world, "names", travellers=[TravellerDetails("adult", "Ana", "Lima", nationality="PT")]
        )
        ana = booking.travellers.get()
    client = _client(world)
    page = client.get(_page(world, booking, "travellers/")).content.decode()
    form = _traveller_form(page)
    assert form[f"t-{ana.pk}-first_name"] == "Ana" and form[f"t-{ana.pk}-nationality"] == "PT"
    assert "new-0-first_name" in form and "new-1-first_name" not in form  # 2 adults booked, 1 named

    form[f"t-{ana.pk}-dietary_notes"] = "Vegetarian"
    form.update({"new-0-first_name": "Rui", "new-0-last_name": "Lima", "new-0-date_of_birth": "1990-04-05"})
    form.update({"new-0-nationality": "BR", "new-0-passport_number": "FZ123456"})
    response = client.post(_page(world, booking, "travellers/"), form, follow=True)

    assert "traveller details are saved" in response.content.decode()
    with tenant_context(world.tenant):
        ana.refresh_from_db()
        rui = booking.travellers.exclude(pk=ana.pk).get()
        assert ana.dietary_notes == "Vegetarian" and ana.first_name == "Ana"
        assert (rui.first_name, rui.last_name, rui.date_of_birth, rui.nationality, rui.passport_number) == (
            "Rui",
            "Lima",
            "1990-04-05",
            "BR",
            "FZ123456",
        )
        audit = AuditEvent.objects.filter(target_id=str(booking.pk)).latest("created_at")
        assert audit.changes["travellers"][1] == {"changed": {str(ana.pk): ["dietary_notes"]}, "added": 1}
        with connection.cursor() as cursor:
            cursor.execute("SELECT passport_number FROM bookings_traveller WHERE id = %s", [rui.pk])
            stored = cursor.fetchone()[0]
        assert b"FZ123456" not in bytes(stored) and len(bytes(stored)) > len("FZ123456")  # ciphertext


@pytest.mark.django_db
def test_sending_the_form_unchanged_changes_nothing():
    world = World()
    with tenant_context(world.tenant):
        booking = _retail_booking(world, "same", travellers=[TravellerDetails("adult", "Ana", "Lima")])
    client = _client(world)
    form = _traveller_form(client.get(_page(world, booking, "travellers/")).content.decode())

    response = client.post(_page(world, booking, "travellers/"), form, follow=True)

    assert "Nothing was changed." in response.content.decode()
    with tenant_context(world.tenant):
        assert not AuditEvent.objects.filter(target_id=str(booking.pk)).exists()
        assert booking.travellers.count() == 1


@pytest.mark.django_db
def test_a_bad_traveller_form_is_refused_field_by_field_and_changes_nothing():
    world = World()
    with tenant_context(world.tenant):
        booking = _retail_booking(world, "bad", travellers=[TravellerDetails("adult", "Ana", "Lima")])
        ana = booking.travellers.get()
    client = _client(world)
    form = _traveller_form(client.get(_page(world, booking, "travellers/")).content.decode())
    form[f"t-{ana.pk}-last_name"] = ""
    form["new-0-date_of_birth"] = (timezone.localdate() + dt.timedelta(days=3)).isoformat()

    response = client.post(_page(world, booking, "travellers/"), form)

    page = response.content.decode()
    assert response.status_code == 400
    assert "This field is required." in page and "The date of birth must be in the past." in page
    assert "Enter the traveller" in page  # the open seat has a date but no name
    with tenant_context(world.tenant):
        assert booking.travellers.count() == 1 and booking.travellers.get().last_name == "Lima"


@pytest.mark.django_db
def test_after_the_cutoff_traveller_details_are_read_only():
    world = World()
    with tenant_context(world.tenant):
        booking = _retail_booking(world, "late", travellers=[TravellerDetails("adult", "Ana", "Lima")])
        ana = booking.travellers.get()
        _move_departure(world, dt.timedelta(hours=10))  # the cut-off is 48 hours before
    client = _client(world)

    page = client.get(_page(world, booking, "travellers/")).content.decode()
    assert "contact us" in page and "<form" not in page
    response = client.post(
        _page(world, booking, "travellers/"),
        {f"t-{ana.pk}-first_name": "Eve", f"t-{ana.pk}-last_name": "Lima", "new-0-first_name": "Rui"},
    )

    assert response.status_code == 409
    with tenant_context(world.tenant):
        assert booking.travellers.count() == 1 and booking.travellers.get().first_name == "Ana"
