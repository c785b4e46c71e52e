"""Schedules, departures, closures, allotments and holds through the back office: seats move only through
inventory.services, a service's refusal is a form error and nothing changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from inventory import services
from inventory.models import Allotment, Closure, Departure, Hold, Schedule
from tenants.context import tenant_context
from tenants.models import AuditEvent
from tests.backoffice.conftest import form_errors
from tests.catalogue import make_agency, make_departure

DEPARTURES = "/admin/inventory/departure/"


def _change(departure, **overrides) -> dict:
    data = {"capacity": departure.capacity, "status": departure.status, "cutoff_minutes": 60, "notes": ""}
    data.update(overrides)
    return data


def _take_seats(tenant, departure, held: int = 0, sold: int = 0) -> None:
    with tenant_context(tenant):
        if sold:
            services.convert_hold(services.place_hold(departure, {"adult": sold}, "retail", "sold-seats"))
        if held:
            services.place_hold(departure, {"adult": held}, "retail", "held-seats")


def test_operations_changes_capacity_and_notes_and_the_change_is_audited(tenant, staff, catalogue):
    departure = catalogue["departure"]
    _take_seats(tenant, departure, held=2, sold=3)
    client = staff("operations")

    response = client.post(
        f"{DEPARTURES}{departure.pk}/change/", _change(departure, capacity=12, notes="Guide: Ola")
    )

    assert response.status_code == 302, form_errors(response)
    with tenant_context(tenant):
        fresh = Departure.objects.get(pk=departure.pk)
        event = AuditEvent.objects.get(target_type="inventory.departure")
    assert (fresh.capacity, fresh.held, fresh.sold, fresh.notes) == (12, 2, 3, "Guide: Ola")
    assert event.changes["capacity"] == [20, 12]


def test_capacity_below_seats_taken_is_a_form_error_and_nothing_changes(tenant, staff, catalogue):
    departure = catalogue["departure"]
    _take_seats(tenant, departure, held=2, sold=3)
    client = staff("operations")

    response = client.post(
        f"{DEPARTURES}{departure.pk}/change/", _change(departure, capacity=4, notes="changed")
    )

    assert response.status_code == 200
    errors = form_errors(response)
    assert "At least 5" in errors and "cannot go below 5" in errors
    with tenant_context(tenant):
        fresh = Departure.objects.get(pk=departure.pk)
        assert not AuditEvent.objects.filter(target_type="inventory.departure").exists()
    assert (fresh.capacity, fresh.held, fresh.sold, fresh.notes) == (
        20,
        2,
        3,
        "",
    )  # the notes rolled back too


def test_a_sale_during_the_edit_is_not_overwritten(tenant, staff, catalogue, monkeypatch):
    """The admin loads the departure, then a sale lands before the form is saved: writing the loaded row back
    would erase it. Only the changed fields may be written."""
    from inventory.admin import DepartureAdmin

    departure = catalogue["departure"]
    load = DepartureAdmin.get_object

    def load_then_sell(self, request, object_id, from_field=None):
        loaded = load(self, request, object_id, from_field)
        services.place_hold(departure, {"adult": 4}, "retail", "sale-during-edit")
        return loaded

    monkeypatch.setattr(DepartureAdmin, "get_object", load_then_sell)
    client = staff("operations")

    response = client.post(f"{DEPARTURES}{departure.pk}/change/", _change(departure, notes="late edit"))

    assert response.status_code == 302, form_errors(response)
    with tenant_context(tenant):
        fresh = Departure.objects.get(pk=departure.pk)
    assert (fresh.held, fresh.notes) == (4, "late edit")


def test_closing_a_departure_goes_through_the_service(tenant, staff, catalogue):
    departure = catalogue["departure"]
    client = staff("operations")
    response = client.post(f"{DEPARTURES}{departure.pk}/change/", _change(departure, status="closed"))
    assert response.status_code == 302
    with tenant_context(tenant):
        assert Departure.objects.get(pk=departure.pk).status == Departure.Status.CLOSED


def test_read_only_and_sales_cannot_change_departures(tenant, staff, catalogue):
    departure = catalogue["departure"]
    for role in ("read_only", "sales"):
        client = staff(role)
        assert client.get(DEPARTURES).status_code == 200
        response = client.post(f"{DEPARTURES}{departure.pk}/change/", _change(departure, capacity=5))
        assert response.status_code == 403
    with tenant_context(tenant):
        assert Departure.objects.get(pk=departure.pk).capacity == 20


def test_departure_list_shows_seat_columns_and_filters_by_status(tenant, staff, catalogue):
    departure = catalogue["departure"]
    _take_seats(tenant, departure, held=2, sold=3)
    client = staff("read_only")
    page = client.get(DEPARTURES, {"status__exact": "open"}).content.decode()
    assert str(departure.pk) in page
    for column in ("column-capacity", "column-allotted", "column-held", "column-sold", "column-free_seats"):
        assert column in page
    assert '<td class="field-free_seats">15</td>' in page
    assert str(departure.pk) not in client.get(DEPARTURES, {"status__exact": "closed"}).content.decode()


def test_schedule_added_then_departures_generated_by_the_admin_action(tenant, staff, catalogue):
    client = staff("operations")
    start = dt.date.today() + dt.timedelta(days=10)
    data = {
        "option": catalogue["option"].pk,
        "start_date": start.isoformat(),
        "end_date": (start + dt.timedelta(days=13)).isoformat(),
        "days": ["1", "16"],  # Monday, Friday
        "times": "09:00,14:30",
        "capacity": "16",
        "cutoff_minutes": "60",
    }
    response = client.post("/admin/inventory/schedule/add/", data)
    assert response.status_code == 302, form_errors(response)
    with tenant_context(tenant):
        schedule = Schedule.objects.get()
    assert (schedule.weekdays, schedule.times) == (17, [dt.time(9), dt.time(14, 30)])

    response = client.post(
        "/admin/inventory/schedule/",
        {"action": "generate_departures", "_selected_action": [str(schedule.pk)]},
        follow=True,
    )

    assert response.status_code == 200
    with tenant_context(tenant):
        generated = list(Departure.objects.filter(schedule=schedule))
    assert len(generated) == 8  # two Mondays and two Fridays × two times
    assert {d.starts_at.astimezone(dt.UTC).weekday() for d in generated} <= {0, 4}
    assert "8 departures created" in response.content.decode()


def test_schedule_with_end_before_start_is_refused(tenant, staff, catalogue):
    client = staff("operations")
    data = {
        "option": catalogue["option"].pk,
        "start_date": "2027-01-10",
        "end_date": "2027-01-01",
        "days": ["1"],
        "times": "09:00",
        "capacity": "16",
        "cutoff_minutes": "60",
    }
    response = client.post("/admin/inventory/schedule/add/", data)
    assert response.status_code == 200
    assert "Ends before it starts" in form_errors(response)
    with tenant_context(tenant):
        assert not Schedule.objects.exists()


def test_sales_cannot_run_generate_departures(tenant, staff, catalogue):
    with tenant_context(tenant):
        schedule = services.create_schedule(
            catalogue["option"],
            dt.date.today() + dt.timedelta(days=5),
            dt.date.today() + dt.timedelta(days=9),
            127,
            [dt.time(10)],
            10,
        )
    client = staff("sales")
    client.post(
        "/admin/inventory/schedule/",
        {"action": "generate_departures", "_selected_action": [str(schedule.pk)]},
    )
    with tenant_context(tenant):
        assert not Departure.objects.filter(schedule=schedule).exists()


def test_allotment_created_through_the_service_and_too_many_seats_is_a_form_error(tenant, staff, catalogue):
    departure = catalogue["departure"]
    with tenant_context(tenant):
        agency = make_agency("Fjord Partners AS", currency="NOK")
    client = staff("operations")
    release = (departure.starts_at - dt.timedelta(days=3)).astimezone(dt.UTC)
    data = {
        "agency": agency.pk,
        "departure": departure.pk,
        "release_at_0": release.strftime("%Y-%m-%d"),
        "release_at_1": release.strftime("%H:%M:%S"),
    }

    response = client.post("/admin/inventory/allotment/add/", data | {"seats": "25"})
    assert response.status_code == 200
    assert "At most 20" in form_errors(response)
    with tenant_context(tenant):
        assert not Allotment.objects.exists()
        assert Departure.objects.get(pk=departure.pk).allotted == 0

    response = client.post("/admin/inventory/allotment/add/", data | {"seats": "6"})
    assert response.status_code == 302, form_errors(response)
    with tenant_context(tenant):
        assert Allotment.objects.get().seats == 6
        assert Departure.objects.get(pk=departure.pk).allotted == 6


def test_releasing_several_allotments_on_several_departures_at_once(tenant, staff, catalogue):
    """Found by a probe: the bulk release locked the departures in the order of the list, against the lock order
    (by primary key), and answered 500 with some released and some not."""
    first = catalogue["departure"]
    with tenant_context(tenant):
        second = make_departure(first.option, capacity=20, starts_at=first.starts_at + dt.timedelta(days=1))
        later, earlier = sorted((first, second), key=lambda departure: departure.pk, reverse=True)
        agencies = [make_agency(f"Partner {n} AS", currency="NOK") for n in range(2)]
        release = first.starts_at - dt.timedelta(days=3)
        # Whichever way the list is ordered, a later departure's block comes before an earlier one's.
        blocks = [
            services.create_allotment(agencies[0], later, 2, release),
            services.create_allotment(agencies[0], earlier, 2, release),
            services.create_allotment(agencies[1], later, 2, release),
        ]
    selected = {"action": "release_allotments", "_selected_action": [str(block.pk) for block in blocks]}

    response = staff("operations").post("/admin/inventory/allotment/", selected)

    assert response.status_code == 302
    with tenant_context(tenant):
        assert {block.status for block in Allotment.objects.all()} == {"released"}
        assert [Departure.objects.get(pk=d.pk).allotted for d in (first, second)] == [0, 0]


def test_closure_closes_open_departures_in_its_dates(tenant, staff, catalogue):
    departure = catalogue["departure"]
    client = staff("operations")
    data = {
        "tour": catalogue["tour"].pk,
        "start_date": departure.local_date.isoformat(),
        "end_date": departure.local_date.isoformat(),
        "reason": "Storm warning",
    }
    response = client.post("/admin/inventory/closure/add/", data, follow=True)
    assert response.status_code == 200
    assert "1 open departures in the period were closed" in response.content.decode()
    with tenant_context(tenant):
        assert Closure.objects.get().reason == "Storm warning"
        assert Departure.objects.get(pk=departure.pk).status == Departure.Status.CLOSED


def test_holds_are_read_only_even_for_the_owner(tenant, staff, catalogue):
    _take_seats(tenant, catalogue["departure"], held=1)
    with tenant_context(tenant):
        hold = Hold.objects.get()
    client = staff("owner")
    assert client.get("/admin/inventory/hold/").status_code == 200
    assert client.get("/admin/inventory/hold/add/").status_code == 403
    response = client.post(f"/admin/inventory/hold/{hold.pk}/change/", {"status": "released"})
    assert response.status_code == 403
    with tenant_context(tenant):
        assert Hold.objects.get().status == Hold.Status.ACTIVE


def test_one_off_departure_is_created_in_the_tours_time_zone(tenant, staff, catalogue):
    client = staff("operations")
    day = dt.date.today() + dt.timedelta(days=40)
    data = {"option": catalogue["option"].pk, "capacity": "9", "cutoff_minutes": "30", "notes": ""}

    response = client.post(f"{DEPARTURES}add/", data | {"starts_local": f"{day} 10:15"})

    assert response.status_code == 302, form_errors(response)
    with tenant_context(tenant):
        departure = Departure.objects.get(local_date=day, capacity=9)
        assert AuditEvent.objects.filter(target_type="inventory.departure", action="create").exists()
    local = departure.starts_at.astimezone(ZoneInfo("Europe/Oslo"))
    assert (local.date(), local.hour, local.minute) == (day, 10, 15)


def test_one_off_departure_in_the_past_is_a_form_error(tenant, staff, catalogue):
    client = staff("operations")
    data = {
        "option": catalogue["option"].pk,
        "capacity": "9",
        "cutoff_minutes": "30",
        "starts_local": "2020-01-01 10:00",
    }
    response = client.post(f"{DEPARTURES}add/", data)
    assert response.status_code == 200
    assert "That time has passed" in form_errors(response)
    with tenant_context(tenant):
        assert Departure.objects.count() == 1  # the catalogue's own


def test_departure_list_query_count_does_not_grow_with_rows(
    tenant, staff, catalogue, django_assert_max_num_queries
):
    client = staff("read_only")
    client.get(DEPARTURES)  # warm the session and permission caches
    with django_assert_max_num_queries(40) as few:
        client.get(DEPARTURES)
    with tenant_context(tenant):
        option = catalogue["option"]
        start = catalogue["departure"].starts_at
        for n in range(1, 11):
            make_departure(option, capacity=10, starts_at=start + dt.timedelta(days=n))
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(DEPARTURES)
    assert response.content.decode().count('class="field-free_seats"') == 11


def test_editing_a_schedule_keeps_its_option_and_shows_its_weekdays(tenant, staff, catalogue):
    with tenant_context(tenant):
        schedule = services.create_schedule(
            catalogue["option"],
            dt.date.today() + dt.timedelta(days=5),
            dt.date.today() + dt.timedelta(days=9),
            1 | 64,
            [dt.time(10)],
            10,
        )
    client = staff("operations")
    url = f"/admin/inventory/schedule/{schedule.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert page.context["adminform"].form.initial["days"] == ["1", "64"]

    data = {
        "start_date": schedule.start_date.isoformat(),
        "end_date": schedule.end_date.isoformat(),
        "days": ["1"],
        "times": "10:00",
        "capacity": "12",
        "cutoff_minutes": "60",
    }
    response = client.post(url, data)
    assert response.status_code == 302, form_errors(response)
    with tenant_context(tenant):
        schedule.refresh_from_db()
        assert AuditEvent.objects.get(target_type="inventory.schedule").changes["weekdays"] == [65, 1]
    assert (schedule.weekdays, schedule.capacity, schedule.option_id) == (1, 12, catalogue["option"].pk)
