"""Catalogue test data: a tour with an option, unit types, a retail price list and departures.

Shared by the inventory, pricing, availability, search, admin and isolation tests. Every builder must run inside
``tenant_context(tenant)``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

from partners.models import Agency, Contract
from tours.models import Channel, Option, PriceList, Rate, Tour, UnitType

_counter = itertools.count()


def make_tour(title: str | None = None, **fields) -> Tour:
    n = next(_counter)
    defaults = {
        "slug": f"tour-{n}",
        "title": title or f"Tour {n}",
        "summary": "A day out.",
        "duration_minutes": 240,
        "time_zone": "Europe/Lisbon",
        "status": Tour.Status.PUBLISHED,
        "languages": ["en"],
    }
    defaults.update(fields)
    return Tour.objects.create(**defaults)


def make_option(tour: Tour, code: str = "shared", **fields) -> Option:
    return Option.objects.create(tour=tour, code=code, name=fields.pop("name", code.title()), **fields)


def make_unit_types(tour: Tour) -> dict[str, UnitType]:
    """adult (counts), child 4–11 (counts), infant 0–3 (does not count toward capacity)."""
    return {
        "adult": UnitType.objects.create(
            tour=tour, code="adult", kind="adult", name="Adult", min_age=12, position=0
        ),
        "child": UnitType.objects.create(
            tour=tour, code="child", kind="child", name="Child", min_age=4, max_age=11, position=1
        ),
        "infant": UnitType.objects.create(
            tour=tour,
            code="infant",
            kind="infant",
            name="Infant",
            min_age=0,
            max_age=3,
            counts_toward_capacity=False,
            position=2,
        ),
    }


def make_price_list(
    option: Option,
    unit_types: dict[str, UnitType],
    amounts: dict[str, int],
    *,
    channel: str = Channel.RETAIL,
    currency: str = "EUR",
    **fields,
) -> PriceList:
    price_list = PriceList.objects.create(
        name=fields.pop("name", f"{channel} {currency} {next(_counter)}"),
        channel=channel,
        currency=currency,
        **fields,
    )
    for code, amount in amounts.items():
        Rate.objects.create(price_list=price_list, option=option, unit_type=unit_types[code], amount=amount)
    return price_list


def make_departure(option: Option, *, capacity: int = 50, starts_at: dt.datetime | None = None, **fields):
    from inventory.models import Departure

    tour = option.tour
    starts_at = starts_at or (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).replace(microsecond=0)
    return Departure.objects.create(
        tour=tour,
        option=option,
        starts_at=starts_at,
        ends_at=starts_at + dt.timedelta(minutes=tour.duration_minutes),
        local_date=starts_at.astimezone(ZoneInfo(tour.time_zone)).date(),
        capacity=capacity,
        **fields,
    )


def make_agency(name: str | None = None, currency: str = "EUR", **fields) -> Agency:
    n = next(_counter)
    defaults = {
        "legal_name": name or f"Agency {n} Ltd",
        "country": "GB",
        "currency": currency,
        "email": f"a{n}@agency.example",
    }
    defaults.update(fields)
    return Agency.objects.create(**defaults)


def make_contract(agency: Agency, **fields) -> Contract:
    defaults = {"model": Contract.Model.NET_RATE, "credit_limit": 500_000, "valid_from": dt.date(2026, 1, 1)}
    defaults.update(fields)
    return Contract.objects.create(agency=agency, **defaults)
