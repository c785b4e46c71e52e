"""The departure manifest: /admin/bookings/booking/manifest/<departure id>/ (page, csv/, pdf/)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zlib
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bookings import services
from bookings.manifest import NAME_TO_COME, departure_manifest, spreadsheet_safe
from bookings.models import Booking, Traveller
from bookings.services import Lead, TravellerDetails
from inventory.services import place_hold
from tenants.context import tenant_context
from tests.backoffice.conftest import signed_in
from tests.bookings.world import World
from tours.models import BookingQuestion


@pytest.fixture
def world(db):
    world = World()
    with tenant_context(world.tenant):
        BookingQuestion.objects.create(
            tour=world.tour, code="pickup", text="Pick-up hotel", scope=BookingQuestion.Scope.TRAVELLER
        )
    return world


def _url(departure, fmt: str = "") -> str:
    return f"/admin/bookings/booking/manifest/{departure.pk}/" + (f"{fmt}/" if fmt else "")


def _trade_booking(world, key: str, units: dict, travellers=(), confirm: bool = True) -> Booking:
    hold = place_hold(world.fresh_departure(), units, "trade", key, agency=world.agency)
    booking = services.create_booking(
        holds=[hold],
        lead=Lead(name="Ana Lima", email="ana@example.com", phone="+351 912 345 678"),
        channel="trade",
        language="en",
        agency=world.agency,
        agent_reference="AG-" + key,
        on_account=True,
        travellers=travellers,
    )
    return services.confirm_booking(booking) if confirm else booking


def _family(world) -> Booking:
    """Confirmed: 2 adults and a child; one adult named (with notes a spreadsheet would run), one checked in."""
    born = dt.date(1990, 5, 17)
    booking = _trade_booking(
        world,
        "family",
        {"adult": 2, "child": 1},
        [
            TravellerDetails(
                unit_code="adult",
                first_name="Zoë",
                last_name="Øster",
                date_of_birth=born,
                nationality="no",
                dietary_notes='=HYPERLINK("http://evil.example")',
                medical_notes="-2 dioptres; asthma",
                answers={"pickup": "Hotel Avenida"},
            )
        ],
    )
    Traveller.objects.filter(booking=booking).update(
        checked_in_at=world.departure.starts_at - dt.timedelta(minutes=20)
    )
    return booking


def test_the_page_lists_travellers_unnamed_seats_and_totals_for_a_guide(world):
    with tenant_context(world.tenant):
        family = _family(world)
        solo = _trade_booking(
            world,
            "solo",
            {"adult": 1},
            [TravellerDetails(unit_code="adult", first_name="Li", last_name="Wei")],
        )
        pending = _trade_booking(world, "pending", {"adult": 1}, confirm=False)
        cancelled = services.cancel_booking(_trade_booking(world, "gone", {"adult": 1}), reason="test")
    client = signed_in(world.tenant, "guide")[1]

    response = client.get(_url(world.departure))

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    assert world.tour.title in page and world.option.name in page and "Europe/Lisbon" in page
    local = world.departure.starts_at.astimezone(ZoneInfo("Europe/Lisbon"))
    assert local.strftime("%Y-%m-%d %H:%M") in page
    rows = re.findall(r'<tr class="traveller[^"]*">(.*?)</tr>', page, re.S)
    assert len(rows) == 4  # Zoë, two unnamed seats of the family, Li Wei
    zoe = next(row for row in rows if "Zoë Øster" in row)
    for text in (
        "1990-05-17",
        "NO",
        "Hotel Avenida",
        "Pick-up hotel",
        "asthma",
        "+351 912 345 678",
        "AG-family",
    ):
        assert text in zoe, text
    assert re.search(r"<time[^>]*>\d\d:\d\d</time>", zoe)  # checked in
    assert sum(NAME_TO_COME in row for row in rows) == 2
    assert family.reference in page and solo.reference in page
    assert pending.reference not in page and cancelled.reference not in page
    totals = re.search(r'id="manifest-totals".*?</table>', page, re.S).group(0)
    assert re.search(r"Adult</th><td>3</td><td>2</td><td>1</td>", totals)
    assert re.search(r"Child</th><td>1</td><td>0</td><td>0</td>", totals)


def test_the_csv_reads_back_in_a_spreadsheet_with_formulas_neutralised(world):
    with tenant_context(world.tenant):
        family = _family(world)
    client = signed_in(world.tenant, "operations")[1]

    response = client.get(_url(world.departure, "csv"))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"] and ".csv" in response["Content-Disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(rows) == 3
    zoe = next(row for row in rows if row["Traveller"] == "Zoë Øster")
    assert zoe["Booking"] == family.reference and zoe["Unit"] == "Adult"
    assert zoe["Dietary notes"] == '\'=HYPERLINK("http://evil.example")'
    assert zoe["Medical notes"] == "'-2 dioptres; asthma"
    assert zoe["Lead phone"] == "'+351 912 345 678"
    assert zoe["Answers"] == "Pick-up hotel: Hotel Avenida"
    assert zoe["Age"].isdigit() and zoe["Checked in"]
    assert [row["Unit"] for row in rows if row["Traveller"] == NAME_TO_COME] == ["Adult", "Child"]


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ("=1+1", "'=1+1"),
        ("+47", "'+47"),
        ("-x", "'-x"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("ok", "ok"),
    ],
)
def test_spreadsheet_safe(value, safe):
    assert spreadsheet_safe(value) == safe


def test_the_pdf_is_a_landscape_a4_of_the_same_rows(world, monkeypatch):
    import core.pdf

    rendered: list[str] = []
    real = core.pdf.render_to_string

    def spy(template, context):
        html = real(template, context)
        rendered.append(html)
        return html

    monkeypatch.setattr(core.pdf, "render_to_string", spy)
    with tenant_context(world.tenant):
        family = _family(world)
    client = signed_in(world.tenant, "guide")[1]

    response = client.get(_url(world.departure, "pdf"))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf" and response.content.startswith(b"%PDF")
    assert ".pdf" in response["Content-Disposition"]
    width, height = re.search(
        rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)", _inflated(response.content)
    ).groups()
    assert (round(float(width)), round(float(height))) == (842, 595)  # A4 landscape, in points
    html = rendered[0]
    assert "size: A4 landscape" in html
    assert family.reference in html and "Zoë Øster" in html and html.count(NAME_TO_COME) == 2


def _inflated(pdf: bytes) -> bytes:
    """The PDF with its compressed streams (object streams hold the page dictionaries) inflated.

    Each stream is cut by its declared /Length: compressed bytes may themselves end in CR or
    hold "endstream", so searching for the keyword cut some streams short (a flaky failure).
    """
    parts = [pdf]
    for header in re.finditer(rb"/Length (\d+)[^>]*>>\s*stream\r?\n", pdf):
        start = header.end()
        parts.append(zlib.decompress(pdf[start : start + int(header.group(1))]))
    return b"\n".join(parts)


def test_the_selector_uses_a_fixed_number_of_queries(world):
    with tenant_context(world.tenant):
        _family(world)
        with CaptureQueriesContext(connection) as one:
            departure_manifest(world.departure.pk)
        for n in range(4):
            _trade_booking(
                world,
                f"more{n}",
                {"adult": 2},
                [TravellerDetails(unit_code="adult", first_name=f"P{n}", last_name="Q")] * 2,
            )
        with CaptureQueriesContext(connection) as five:
            manifest = departure_manifest(world.departure.pk)
    assert len(manifest.rows) == 3 + 8
    assert len(five) == len(one) <= 5


def test_another_tenants_departure_is_not_found_and_the_departure_page_links_the_manifest(world):
    other = World()
    client = signed_in(world.tenant, "guide")[1]

    assert client.get(_url(other.departure)).status_code == 404
    assert client.get(_url(other.departure, "csv")).status_code == 404
    page = client.get(f"/admin/inventory/departure/{world.departure.pk}/change/").content.decode()
    assert f'href="{_url(world.departure)}"' in page
    listing = client.get("/admin/inventory/departure/").content.decode()
    assert f'href="{_url(world.departure)}"' in listing


def test_a_completed_booking_stays_on_the_manifest_of_its_past_departure(world):
    with tenant_context(world.tenant):
        booking = _family(world)
        started = timezone.now() - dt.timedelta(hours=1)
        type(world.departure).objects.filter(pk=world.departure.pk).update(
            starts_at=started, ends_at=started + dt.timedelta(minutes=30)
        )
        services.complete_booking(booking)
    response = signed_in(world.tenant, "read_only")[1].get(_url(world.departure))
    assert response.status_code == 200
    page = response.content.decode()
    assert booking.reference in page and "Zoë Øster" in page
