"""The capacity calendar: one tour's departures for one month, for operations staff in the back office.

Hooked onto the departures' admin pages (``portals.backoffice.admin``): signed-in staff of this host's tenant with
view_departure. Seat figures are as a sale would see them now: holds past their expiry that no write has released yet count as
free again (or as allotted, when they came from an allotment still in force), like the availability selector.
"""

from __future__ import annotations

import calendar
import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.core.exceptions import PermissionDenied
from django.db.models import Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from inventory.models import Allotment, Departure, Hold
from tours.models import Tour


@dataclass(frozen=True)
class CalendarDeparture:
    id: uuid.UUID
    option: str
    starts_local: dt.datetime
    capacity: int
    allotted: int
    held: int
    sold: int
    status: str
    status_label: str

    @property
    def free(self) -> int:
        return max(self.capacity - self.allotted - self.held - self.sold, 0)


@dataclass(frozen=True)
class CalendarDay:
    date: dt.date
    in_month: bool
    departures: list[CalendarDeparture]


def parse_month(value: str | None, today: dt.date) -> dt.date:
    """The first day of ``YYYY-MM``; this month when absent or malformed (a bad link should not be an error)."""
    if value:
        try:
            parsed = dt.datetime.strptime(value, "%Y-%m").date()
        except ValueError:
            parsed = None
        if parsed is not None and 1900 < parsed.year < 2200:
            return parsed
    return today.replace(day=1)


def _shift_month(first: dt.date, months: int) -> dt.date:
    index = first.year * 12 + first.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _lapsed_seats(departure_ids: list[uuid.UUID], now: dt.datetime) -> tuple[dict, dict, dict]:
    """Per departure: (held seats of expired active holds, of which seats that return to an allotment still in
    force, unused seats of allotments past their release time but not yet released). Two queries."""
    in_force: set[uuid.UUID] = set()
    lapsed_unused: dict[uuid.UUID, int] = defaultdict(int)
    for allotment_id, departure_id, seats, used, release_at in Allotment.objects.filter(
        departure_id__in=departure_ids, status=Allotment.Status.ACTIVE
    ).values_list("id", "departure_id", "seats", "used", "release_at"):
        if release_at <= now:
            lapsed_unused[departure_id] += seats - used
        else:
            in_force.add(allotment_id)
    expired: dict[uuid.UUID, int] = defaultdict(int)
    back_to_allotment: dict[uuid.UUID, int] = defaultdict(int)
    rows = (
        Hold.objects.filter(departure_id__in=departure_ids, status=Hold.Status.ACTIVE, expires_at__lte=now)
        .values("departure_id", "allotment_id")
        .annotate(seats=Sum("seats"), from_allotment=Sum("seats_from_allotment"))
        .order_by()
    )
    for row in rows:
        expired[row["departure_id"]] += row["seats"]
        if row["allotment_id"] in in_force:
            back_to_allotment[row["departure_id"]] += row["from_allotment"]
    return expired, back_to_allotment, lapsed_unused


def month_departures(tour: Tour, first: dt.date, now: dt.datetime | None = None) -> list[CalendarDeparture]:
    """The tour's departures whose local date falls in the month starting ``first``, in start order. Three
    queries whatever the number of departures."""
    now = now or timezone.now()
    zone = ZoneInfo(tour.time_zone)
    departures = list(
        Departure.objects.filter(tour=tour, local_date__gte=first, local_date__lt=_shift_month(first, 1))
        .select_related("option")
        .order_by("starts_at")
    )
    ids = [departure.pk for departure in departures]
    expired, back_to_allotment, lapsed_unused = _lapsed_seats(ids, now) if ids else ({}, {}, {})
    return [
        CalendarDeparture(
            id=departure.pk,
            option=departure.option.name,
            starts_local=departure.starts_at.astimezone(zone),
            capacity=departure.capacity,
            allotted=departure.allotted
            + back_to_allotment.get(departure.pk, 0)
            - lapsed_unused.get(departure.pk, 0),
            held=departure.held - expired.get(departure.pk, 0),
            sold=departure.sold,
            status=departure.status,
            status_label=departure.get_status_display(),
        )
        for departure in departures
    ]


def month_grid(first: dt.date, departures: list[CalendarDeparture]) -> list[list[CalendarDay]]:
    by_date: dict[dt.date, list[CalendarDeparture]] = defaultdict(list)
    for departure in departures:
        by_date[departure.starts_local.date()].append(departure)
    weeks = calendar.Calendar(firstweekday=calendar.MONDAY).monthdatescalendar(first.year, first.month)
    return [
        [
            CalendarDay(
                day, day.month == first.month, by_date.get(day, []) if day.month == first.month else []
            )
            for day in week
        ]
        for week in weeks
    ]


def capacity_calendar(request: HttpRequest, tour_id: uuid.UUID, *, model_admin) -> HttpResponse:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    tour = Tour.objects.filter(pk=tour_id).first()  # another tenant's tour is invisible here: 404, not 403
    if tour is None:
        raise Http404("No such tour.")
    today = timezone.now().astimezone(ZoneInfo(tour.time_zone)).date()
    first = parse_month(request.GET.get("month"), today)
    departures = month_departures(tour, first)
    totals = {
        name: sum(getattr(departure, name) for departure in departures)
        for name in ("capacity", "allotted", "held", "sold", "free")
    }
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": f"Capacity calendar: {tour.title}",
        "tour": tour,
        "month": first,
        "previous_month": _shift_month(first, -1).strftime("%Y-%m"),
        "next_month": _shift_month(first, 1).strftime("%Y-%m"),
        "weeks": month_grid(first, departures),
        "weekday_names": [calendar.day_name[n] for n in range(7)],
        "departures": departures,
        "totals": totals,
    }
    return TemplateResponse(request, "admin/inventory/departure/calendar.html", context)
