"""The capacity calendar: /admin/inventory/departure/calendar/<tour_id>/?month=YYYY-MM."""

from __future__ import annotations

import datetime as dt
import re

from django.utils import timezone

from inventory import services
from inventory.models import Hold
from tenants.context import tenant_context
from tenants.roles import GRANTS, NONE, VIEW, Role
from tests.accounts.helpers import client_for
from tests.catalogue import make_agency, make_departure, make_option, make_tour, make_unit_types
from tests.factories import host_of, make_tenant


def _url(tour, month: str | None = None) -> str:
    url = f"/admin/inventory/departure/calendar/{tour.pk}/"
    return f"{url}?month={month}" if month else url


def _departure_item(page: str, departure) -> str:
    """The calendar entry (<li>) of one departure."""
    match = re.search(
        rf'<li class="departure[^"]*">\s*<a href="[^"]*{departure.pk}/change/".*?</li>', page, re.S
    )
    assert match, f"departure {departure.pk} is not on the page"
    return match.group(0)


def _figures(item: str) -> dict[str, int]:
    return {name: int(value) for name, value in re.findall(r"<dt>(\w+)</dt><dd>(\d+)</dd>", item)}


def _march_tour(tenant):
    """Departures around March 2027 on an Oslo tour (summer time starts on 28 March)."""
    with tenant_context(tenant):
        tour = make_tour("Northern lights", time_zone="Europe/Oslo")
        option = make_option(tour, name="Minibus")
        make_unit_types(tour)
        busy = make_departure(option, capacity=20, starts_at=dt.datetime(2027, 3, 10, 18, 0, tzinfo=dt.UTC))
        quiet = make_departure(option, capacity=8, starts_at=dt.datetime(2027, 3, 12, 18, 0, tzinfo=dt.UTC))
        april_local = make_departure(
            option, capacity=8, starts_at=dt.datetime(2027, 3, 31, 23, 30, tzinfo=dt.UTC)
        )
        february = make_departure(
            option, capacity=8, starts_at=dt.datetime(2027, 2, 27, 18, 0, tzinfo=dt.UTC)
        )
        agency = make_agency("Aurora Partners AS", currency="NOK")
        services.create_allotment(agency, busy, 5, busy.starts_at - dt.timedelta(days=7))
        services.convert_hold(services.place_hold(busy, {"adult": 3}, "retail", "sold-3"))
        services.place_hold(busy, {"adult": 2}, "retail", "held-2")
        lapsed = services.place_hold(busy, {"adult": 4}, "retail", "lapsed-4")
        # Expired but not yet released by any write: the calendar must count these seats as free.
        Hold.objects.filter(pk=lapsed.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
        services.close_departure(quiet)
    return tour, {"busy": busy, "quiet": quiet, "april_local": april_local, "february": february}


def test_month_shows_each_departure_with_its_seats(tenant, staff):
    tour, departures = _march_tour(tenant)
    client = staff("operations")

    response = client.get(_url(tour, "2027-03"))

    assert response.status_code == 200
    page = response.content.decode()
    busy = _departure_item(page, departures["busy"])
    assert _figures(busy) == {"Capacity": 20, "Allotted": 5, "Held": 2, "Sold": 3, "Free": 10}
    assert ">19:00</time>" in busy and "Minibus" in busy and "Open" in busy  # 18:00 UTC in Oslo winter time
    quiet = _departure_item(page, departures["quiet"])
    assert _figures(quiet) == {"Capacity": 8, "Allotted": 0, "Held": 0, "Sold": 0, "Free": 8}
    assert "Closed to sales" in quiet
    assert str(departures["april_local"].pk) not in page  # 1 April 01:30 in Oslo
    assert str(departures["february"].pk) not in page
    assert "March 2027" in page and "Europe/Oslo" in page
    assert '?month=2027-02"' in page and '?month=2027-04"' in page
    assert '<th scope="col">Monday</th>' in page and "<caption" in page
    nonce = re.search(r'<style nonce="([^"]+)">', page).group(1)
    assert f"'nonce-{nonce}'" in response["Content-Security-Policy"]  # the page's own styles are allowed


def test_next_month_holds_the_departure_that_is_in_april_locally(tenant, staff):
    tour, departures = _march_tour(tenant)
    page = staff("read_only").get(_url(tour, "2027-04")).content.decode()
    item = _departure_item(page, departures["april_local"])
    assert ">01:30</time>" in item
    assert str(departures["busy"].pk) not in page


def test_a_bad_month_shows_the_current_month(tenant, staff, catalogue):
    response = staff("operations").get(_url(catalogue["tour"], "2027-13"))
    assert response.status_code == 200
    assert response.context["month"] == timezone.now().date().replace(day=1)


def test_refused_without_view_departure(tenant, staff, catalogue, monkeypatch):
    monkeypatch.setitem(GRANTS, Role.READ_ONLY, {"*": VIEW, "inventory": NONE, "tenants.membership": NONE})
    client = staff("read_only")
    assert client.get("/admin/").status_code == 200  # in the back office, just not this page
    assert client.get(_url(catalogue["tour"])).status_code == 403


def test_another_tenants_tour_is_not_found(tenant, staff):
    other = make_tenant()
    other_tour, _ = _march_tour(other)
    response = staff("owner").get(_url(other_tour, "2027-03"))
    assert response.status_code == 404
    assert b"Northern lights" not in response.content


def test_signed_out_visitors_are_sent_to_sign_in(tenant, catalogue):
    response = client_for(host_of(tenant)).get(_url(catalogue["tour"]))
    assert response.status_code == 302
    assert "/login/" in response["Location"]
