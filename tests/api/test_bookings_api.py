"""Bookings over the API."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.utils import timezone

from accounts.models import User
from bookings.models import Booking, Document
from events.models import OutboxEvent
from inventory.models import Departure
from partners.models import PartnerUser
from tenants.context import tenant_context
from tenants.models import AuditEvent
from tests.api.conftest import Api, staff_api
from tests.catalogue import (
    make_agency,
    make_contract,
    make_departure,
    make_option,
    make_price_list,
    make_tour,
)
from tests.factories import PASSWORD
from tours.models import Channel, UnitType

pytestmark = pytest.mark.django_db

LEAD = {"name": "Ana Lima", "email": "ana@example.com"}


@pytest.fixture
def priced(world):
    tenant, tour, option, departure, agency, booker = world
    with tenant_context(tenant):
        units = {unit.code: unit for unit in UnitType.objects.filter(tour=tour)}
        make_price_list(option, units, {"adult": 10000, "child": 5000, "infant": 0})
        make_price_list(option, units, {"adult": 8000, "child": 4000, "infant": 0}, channel=Channel.TRADE)
    return world


def _hold(api, departure, key, units=None):
    response = api(
        "post",
        "/api/v1/holds/",
        {"departure": str(departure.pk), "units": units or {"adult": 2}},
        **{"Idempotency-Key": key},
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_a_booker_books_on_account_confirms_and_sees_only_their_agencys_bookings(priced):
    tenant, _, _, departure, agency, booker = priced
    api = Api(tenant, booker)
    body = {
        "holds": [_hold(api, departure, "h1")],
        "lead": LEAD,
        "travellers": [{"unit_code": "adult", "first_name": "Ana", "last_name": "Lima", "nationality": "PT"}],
        "on_account": True,
        "agent_reference": "ATL-42",
        "consent": {"terms_version": "2026-01"},
    }

    created = api("post", "/api/v1/bookings/", body, **{"Idempotency-Key": "b-1"})
    again = api("post", "/api/v1/bookings/", body, **{"Idempotency-Key": "b-1"})

    assert created.status_code == 201, created.content
    booking = created.json()
    assert (booking["status"], booking["channel"], booking["total"]) == ("on_hold", "trade", 16000)
    assert booking["agency"] == str(agency.pk) and booking["lead_email"] == "ana@example.com"
    assert again.json()["id"] == booking["id"]
    confirmed = api("post", f"/api/v1/bookings/{booking['id']}/confirm/")
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    with tenant_context(tenant):
        assert Departure.objects.get(pk=departure.pk).sold == 2

    staff = staff_api(tenant, "sales")
    other = _hold(staff, departure, "s1")
    with tenant_context(tenant):
        make_agency("Other Ltd")
    staff_booking = staff("post", "/api/v1/bookings/", {"holds": [other], "lead": LEAD})
    assert staff_booking.status_code == 201 and staff_booking.json()["channel"] == "back_office"
    assert [b["id"] for b in api("get", "/api/v1/bookings/").json()["results"]] == [booking["id"]]
    assert api("get", f"/api/v1/bookings/{staff_booking.json()['id']}/").status_code == 404
    assert len(staff("get", "/api/v1/bookings/").json()["results"]) == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lead": {"name": "Ana", "email": "nope"}}, "lead"),
        ({"holds": []}, "holds"),
        ({"holds": ["not-a-uuid"]}, "holds"),
        ({"language": "english"}, "language"),  # not one of settings.LANGUAGES
        ({"language": "pt"}, "language"),
        ({"travellers": [{"unit_code": "adult", "first_name": "A"}]}, "travellers"),
        (
            {
                "travellers": [
                    {"unit_code": "adult", "first_name": "A", "last_name": "B", "nationality": "Portugal"}
                ]
            },
            "travellers",
        ),
    ],
)
def test_bad_bookings_are_field_errors_and_create_nothing(priced, change, field):
    tenant, _, _, departure, *_ = priced
    staff = staff_api(tenant, "sales")
    body = {"holds": [_hold(staff, departure, "h")], "lead": LEAD, **change}

    response = staff("post", "/api/v1/bookings/", body)

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    with tenant_context(tenant):
        assert not Booking.objects.exists()


def test_a_retail_booking_with_money_due_cannot_be_confirmed_and_cancelling_twice_is_a_conflict(priced):
    tenant, _, _, departure, *_ = priced
    staff = staff_api(tenant, "sales")
    booking = staff(
        "post", "/api/v1/bookings/", {"holds": [_hold(staff, departure, "h")], "lead": LEAD}
    ).json()

    due = staff("post", f"/api/v1/bookings/{booking['id']}/confirm/")
    cancelled = staff("post", f"/api/v1/bookings/{booking['id']}/cancel/", {"reason": "changed plans"})
    again = staff("post", f"/api/v1/bookings/{booking['id']}/cancel/")

    assert due.status_code == 409 and due.json()["error"]["code"] == "payment_due"
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert again.status_code == 409 and again.json()["error"]["fields"] == {"status": ["cancelled"]}
    with tenant_context(tenant):
        assert Departure.objects.get(pk=departure.pk).held == 0


def test_read_only_staff_cannot_book(priced):
    tenant, _, _, departure, *_ = priced
    sales = staff_api(tenant, "sales")
    hold = _hold(sales, departure, "h")
    response = staff_api(tenant, "read_only")("post", "/api/v1/bookings/", {"holds": [hold], "lead": LEAD})
    assert response.status_code == 403


# --- filters, detail, changes, travellers, documents ---------------------------------------------------------------


def _book(api, departure, key, units=None, **body):
    response = api(
        "post",
        "/api/v1/bookings/",
        {"holds": [_hold(api, departure, f"hold-{key}", units)], "lead": LEAD, **body},
        **{"Idempotency-Key": key},
    )
    assert response.status_code == 201, response.content
    return response.json()


def _confirmed_trade_booking(api, departure, key, units=None, **body):
    booking = _book(api, departure, key, units, on_account=True, **body)
    confirmed = api("post", f"/api/v1/bookings/{booking['id']}/confirm/")
    assert confirmed.status_code == 200, confirmed.content
    return confirmed.json()


def _ids(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {booking["id"] for booking in response.json()["results"]}


def test_the_list_filters_and_refuses_malformed_filters_by_name(priced):
    tenant, _, option, departure, agency, booker = priced
    partner, staff = Api(tenant, booker), staff_api(tenant, "sales")
    with tenant_context(tenant):
        later = make_departure(option, capacity=10, starts_at=departure.starts_at + dt.timedelta(days=10))
    trade = _confirmed_trade_booking(partner, departure, "t1", agent_reference="ATL-7")
    direct = _book(staff, later, "d1")
    first_day, later_day = departure.local_date.isoformat(), later.local_date.isoformat()
    today = timezone.localdate().isoformat()

    assert _ids(staff("get", "/api/v1/bookings/?status=confirmed")) == {trade["id"]}
    assert _ids(staff("get", "/api/v1/bookings/?channel=back_office")) == {direct["id"]}
    assert _ids(staff("get", f"/api/v1/bookings/?agency={agency.pk}")) == {trade["id"]}
    assert _ids(staff("get", f"/api/v1/bookings/?departure_from={later_day}")) == {direct["id"]}
    assert _ids(staff("get", f"/api/v1/bookings/?departure_to={first_day}")) == {trade["id"]}
    assert _ids(staff("get", f"/api/v1/bookings/?created_from={today}&created_to={today}")) == {
        trade["id"],
        direct["id"],
    }
    assert _ids(staff("get", "/api/v1/bookings/?created_to=2020-01-01")) == set()
    assert _ids(staff("get", f"/api/v1/bookings/?reference={direct['reference'].lower()}")) == {direct["id"]}
    assert _ids(staff("get", "/api/v1/bookings/?agent_reference=ATL-7")) == {trade["id"]}
    assert _ids(partner("get", "/api/v1/bookings/?channel=back_office")) == set()  # not theirs anyway

    for query, field in [
        ("status=sleeping", "status"),
        ("channel=pigeon", "channel"),
        ("agency=not-a-uuid", "agency"),
        ("departure_from=2026-13-01", "departure_from"),
        (f"departure_from={later_day}&departure_to={first_day}", "departure_to"),
        ("created_to=yesterday", "created_to"),
        ("reference=ABCDEFGHIJ", "reference"),
    ]:
        response = staff("get", f"/api/v1/bookings/?{query}")
        assert response.status_code == 400, query
        assert field in response.json()["error"]["fields"], query
    refused = partner("get", f"/api/v1/bookings/?agency={agency.pk}")
    assert refused.status_code == 400 and "agency" in refused.json()["error"]["fields"]


def test_the_detail_shows_items_travellers_history_and_the_cost_of_cancelling_while_open(priced):
    tenant, _, _, departure, _, booker = priced
    partner = Api(tenant, booker)
    booking = _confirmed_trade_booking(
        partner,
        departure,
        "b1",
        travellers=[
            {"unit_code": "adult", "first_name": "Ana", "last_name": "Lima", "medical_notes": "asthma"},
        ],
    )

    detail = partner("get", f"/api/v1/bookings/{booking['id']}/").json()
    listed = partner("get", "/api/v1/bookings/").json()["results"][0]

    item = detail["items"][0]
    assert (item["departure"], item["units"], item["total"]) == (str(departure.pk), {"adult": 2}, 16000)
    assert item["departure_starts_at"] and item["option_name"]
    assert detail["travellers"][0]["medical_notes"] == "asthma"  # the agency typed it in; it may read it
    assert [change["to_status"] for change in detail["status_history"]] == ["draft", "on_hold", "confirmed"]
    assert detail["cancellation"] == {  # no tiers on this tour: nothing back once confirmed
        "refund_percent": 0,
        "charge": 16000,
        "credit": 0,
        "refundable": 0,
        "days_before": 29,
    }
    assert listed["id"] == booking["id"] and listed["cancellation"] is None
    cancelled = partner("post", f"/api/v1/bookings/{booking['id']}/cancel/").json()
    assert cancelled["status"] == "cancelled" and cancelled["cancellation"] is None


def test_modify_changes_units_for_sales_and_the_agencys_own_bookers_only(priced):
    tenant, _, _, departure, _, booker = priced
    partner = Api(tenant, booker)
    booking = _confirmed_trade_booking(partner, departure, "b1")
    url = f"/api/v1/bookings/{booking['id']}/modify/"
    item = booking["items"][0]["id"]

    changed = partner("post", url, {"item": item, "units": {"adult": 3}, "reason": "a friend joins"})

    assert changed.status_code == 200, changed.content
    assert (changed.json()["total"], changed.json()["items"][0]["units"]) == (24000, {"adult": 3})
    with tenant_context(tenant):
        assert Departure.objects.get(pk=departure.pk).sold == 3
        event = OutboxEvent.objects.get(aggregate_id=booking["id"], name="booking.modified")
        assert event.payload["by"] == booker.email and event.payload["difference"] == 8000

    sales = staff_api(tenant, "sales")
    assert sales("post", url, {"item": item, "units": {"adult": 2}}).json()["total"] == 16000
    assert (
        staff_api(tenant, "read_only")("post", url, {"item": item, "units": {"adult": 4}}).status_code == 403
    )
    with tenant_context(tenant):
        other_agency = make_agency("Other Ltd")
        make_contract(other_agency)
        other = User.objects.create_user("other@agency.example", PASSWORD)
        PartnerUser.objects.create(user=other, agency=other_agency)
    assert Api(tenant, other)("post", url, {"item": item, "units": {"adult": 4}}).status_code == 404
    with tenant_context(tenant):
        assert Departure.objects.get(pk=departure.pk).sold == 2


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"units": {"adult": 3}}, 400, "item"),
        ({"item": "ITEM", "units": {"adult": -1}}, 400, "units"),
        ({"item": "ITEM", "units": {}}, 400, "units"),
        ({"item": "ITEM", "units": {"adult": 0}}, 400, "units"),
        ({"item": "ITEM", "units": {"adult": 1}, "remove_travellers": ["x"]}, 400, "remove_travellers"),
        ({"item": "ITEM", "units": {"adult": 11}}, 409, "units"),
        ({"item": "ITEM", "units": {"adult": 3, "child": 0}}, 200, None),
    ],
)
def test_bad_modifications_are_refused_and_change_nothing(priced, body, status, field):
    tenant, _, _, departure, *_ = priced
    sales = staff_api(tenant, "sales")
    booking = _book(sales, departure, "b1")
    body = {key: booking["items"][0]["id"] if value == "ITEM" else value for key, value in body.items()}

    response = sales("post", f"/api/v1/bookings/{booking['id']}/modify/", body)

    assert response.status_code == status, response.content
    if field:
        assert any(name.startswith(field) for name in response.json()["error"]["fields"]), response.content
        with tenant_context(tenant):
            assert Departure.objects.get(pk=departure.pk).held == 2
            assert not OutboxEvent.objects.filter(
                aggregate_id=booking["id"], name="booking.modified"
            ).exists()
    else:
        assert (response.json()["total"], response.json()["items"][0]["units"]) == (30000, {"adult": 3})


def test_move_goes_to_another_date_of_the_same_tour_only(priced):
    tenant, _, option, departure, *_ = priced
    sales = staff_api(tenant, "sales")
    with tenant_context(tenant):
        later = make_departure(option, capacity=10, starts_at=departure.starts_at + dt.timedelta(days=7))
        elsewhere = make_departure(make_option(make_tour()), capacity=10)
    booking = _book(sales, departure, "b1")
    url = f"/api/v1/bookings/{booking['id']}/move/"
    item = booking["items"][0]["id"]

    other_tour = sales("post", url, {"item": item, "departure": str(elsewhere.pk)})
    missing = sales("post", url, {"item": item, "departure": "0190b6a4-0000-7000-8000-000000000000"})
    moved = sales("post", url, {"item": item, "departure": str(later.pk), "reason": "weather"})

    assert other_tour.status_code == 400 and "departure" in other_tour.json()["error"]["fields"]
    assert missing.status_code == 400 and "departure" in missing.json()["error"]["fields"]
    assert moved.status_code == 200 and moved.json()["items"][0]["departure"] == str(later.pk)
    with tenant_context(tenant):
        assert (Departure.objects.get(pk=departure.pk).held, Departure.objects.get(pk=later.pk).held) == (
            0,
            2,
        )


def test_travellers_are_changed_and_named_bookers_until_the_cut_off_staff_after_it(priced):
    tenant, _, _, departure, _, booker = priced
    partner, sales = Api(tenant, booker), staff_api(tenant, "sales")
    booking = _confirmed_trade_booking(
        partner,
        departure,
        "b1",
        travellers=[{"unit_code": "adult", "first_name": "Ana", "last_name": "Lima"}],
    )
    url = f"/api/v1/bookings/{booking['id']}/travellers/"
    ana = booking["travellers"][0]["id"]

    changed = partner(
        "patch",
        url,
        {
            "changes": {
                ana: {"nationality": "pt", "date_of_birth": "1990-05-01", "answers": {"pickup": "Hotel"}}
            },
            "add": [{"unit_code": "adult", "first_name": "Rui", "last_name": "Lima"}],
        },
    )

    assert changed.status_code == 200, changed.content
    travellers = {t["first_name"]: t for t in changed.json()["travellers"]}
    assert (travellers["Ana"]["nationality"], travellers["Ana"]["date_of_birth"]) == ("PT", "1990-05-01")
    assert travellers["Ana"]["answers"] == {"pickup": "Hotel"} and "Rui" in travellers

    too_many = partner(
        "patch", url, {"add": [{"unit_code": "adult", "first_name": "Eva", "last_name": "Lima"}]}
    )
    unknown = partner("patch", url, {"changes": {ana: {"shoe_size": 42}}})
    bad = partner("patch", url, {"changes": {ana: {"nationality": "Portugal"}}})
    assert too_many.status_code == 400 and "travellers" in too_many.json()["error"]["fields"]
    assert unknown.status_code == 400 and "changes" in unknown.json()["error"]["fields"]
    assert bad.status_code == 400 and "changes" in bad.json()["error"]["fields"]

    with tenant_context(tenant):
        Departure.objects.filter(pk=departure.pk).update(starts_at=timezone.now() + dt.timedelta(hours=47))
    late = partner("patch", url, {"changes": {ana: {"dietary_notes": "vegan"}}})
    staff = sales("patch", url, {"changes": {ana: {"dietary_notes": "vegan"}}})
    assert late.status_code == 409 and late.json()["error"]["code"] == "after_cutoff"
    assert staff.status_code == 200
    assert {t["first_name"]: t for t in staff.json()["travellers"]}["Ana"]["dietary_notes"] == "vegan"
    assert (
        staff_api(tenant, "read_only")("patch", url, {"changes": {ana: {"last_name": "X"}}}).status_code
        == 403
    )


def test_overriding_the_refundable_amount_needs_the_permission(priced):
    tenant, _, _, departure, _, booker = priced
    partner, sales = Api(tenant, booker), staff_api(tenant, "sales")
    booking = _confirmed_trade_booking(partner, departure, "b1")
    with tenant_context(tenant):
        Booking.objects.filter(pk=booking["id"]).update(paid=16000)
    url = f"/api/v1/bookings/{booking['id']}/cancel/"
    body = {"refundable": 5000, "reason": "goodwill"}

    assert partner("post", url, body).status_code == 403
    assert sales("post", url, body).status_code == 403
    manager = staff_api(tenant, "manager")
    unreasoned = manager("post", url, {"refundable": 5000})
    too_much = manager("post", url, {"refundable": 16001, "reason": "goodwill"})
    with tenant_context(tenant):
        assert Booking.objects.get(pk=booking["id"]).status == "confirmed"
    cancelled = manager("post", url, body)

    assert unreasoned.status_code == 400 and "reason" in unreasoned.json()["error"]["fields"]
    assert too_much.status_code == 400 and "refundable" in too_much.json()["error"]["fields"]
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    with tenant_context(tenant):
        event = OutboxEvent.objects.get(aggregate_id=booking["id"], name="booking.cancelled")
        assert (event.payload["refundable"], event.payload["policy_refundable"]) == (5000, 0)
        assert AuditEvent.objects.filter(target_id=booking["id"]).exists()


def test_a_booker_sees_who_acted_as_operator_or_their_own_agency_never_staff_addresses(priced):
    tenant, _, _, departure, agency, booker = priced
    with tenant_context(tenant):
        colleague = User.objects.create_user("colleague@agency.example", PASSWORD)
        PartnerUser.objects.create(user=colleague, agency=agency)
    partner, sales = Api(tenant, booker), staff_api(tenant, "sales")
    booking = _book(partner, departure, "b1", on_account=True)
    assert Api(tenant, colleague)("post", f"/api/v1/bookings/{booking['id']}/confirm/").status_code == 200
    url = f"/api/v1/bookings/{booking['id']}/cancel/"
    assert sales("post", url, {"reason": "Agency owes 3 invoices; Rui says cancel"}).status_code == 200
    with tenant_context(tenant):
        Booking.objects.get(pk=booking["id"]).status_history.filter(to_status="draft").update(
            actor_label="system", reason="Imported"
        )

    seen_by_booker = partner("get", f"/api/v1/bookings/{booking['id']}/").json()["status_history"]
    seen_by_staff = sales("get", f"/api/v1/bookings/{booking['id']}/").json()["status_history"]

    as_booker = [(c["to_status"], c["actor_label"], c["reason"]) for c in seen_by_booker]
    assert as_booker == [
        ("draft", "system", "Imported"),
        ("on_hold", booker.email, ""),
        ("confirmed", colleague.email, ""),
        ("cancelled", "operator", ""),
    ]
    staff_email = seen_by_staff[-1]["actor_label"]
    assert staff_email not in str(seen_by_booker) and "@" in staff_email
    assert seen_by_staff[-1]["reason"] == "Agency owes 3 invoices; Rui says cancel"
    listed = partner("get", "/api/v1/bookings/").json()["results"][0]["status_history"]
    assert [c["actor_label"] for c in listed] == [c[1] for c in as_booker]


def test_documents_are_listed_and_downloaded_for_the_bookings_own_documents_only(priced):
    tenant, _, _, departure, _, booker = priced
    partner, sales = Api(tenant, booker), staff_api(tenant, "sales")
    mine = _confirmed_trade_booking(partner, departure, "b1")
    theirs = _book(sales, departure, "b2")
    pdf = b"%PDF-1.7 voucher"
    with tenant_context(tenant):
        voucher = Document.objects.create(
            booking_id=mine["id"],
            kind="voucher",
            filename=f"voucher-{mine['reference']}.pdf",
            content=pdf,
            sha256=hashlib.sha256(pdf).hexdigest(),
            size=len(pdf),
        )
        other = Document.objects.create(
            booking_id=theirs["id"], kind="voucher", filename="v.pdf", content=b"x", sha256="0" * 64, size=1
        )

    listed = partner("get", f"/api/v1/bookings/{mine['id']}/documents/")
    download = partner("get", f"/api/v1/bookings/{mine['id']}/documents/{voucher.pk}/")
    as_pdf = partner(
        "get", f"/api/v1/bookings/{mine['id']}/documents/{voucher.pk}/", HTTP_ACCEPT="application/pdf"
    )

    assert listed.status_code == 200
    [entry] = listed.json()
    assert (entry["id"], entry["kind"], entry["version"], entry["size"]) == (
        str(voucher.pk),
        "voucher",
        1,
        len(pdf),
    )
    assert entry["download_url"].endswith(f"/api/v1/bookings/{mine['id']}/documents/{voucher.pk}/")
    assert download.status_code == 200 and download["Content-Type"] == "application/pdf"
    assert download.content == pdf and voucher.filename in download["Content-Disposition"]
    assert as_pdf.status_code == 200 and as_pdf.content == pdf
    assert partner("get", f"/api/v1/bookings/{mine['id']}/documents/{other.pk}/").status_code == 404
    assert partner("get", f"/api/v1/bookings/{mine['id']}/documents/nope/").status_code == 404
    assert partner("get", f"/api/v1/bookings/{theirs['id']}/documents/").status_code == 404
    assert partner("get", f"/api/v1/bookings/{theirs['id']}/documents/{other.pk}/").status_code == 404
    assert sales("get", f"/api/v1/bookings/{theirs['id']}/documents/{other.pk}/").content == b"x"
