"""Each demo tenant's catalogue: tours with options, unit types and prices, six months of departures, and a
partner agency with its booker, its contract and allotments."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

import inventory.services as inventory_services
from accounts.models import User
from demo.data import (
    CATALOGUES,
    CHILD_FACTOR,
    DEPARTURE_DAYS,
    PRIVATE_CAPACITY,
    PRIVATE_FACTOR,
)
from inventory.models import Allotment, Departure
from partners import services as partner_services
from partners.models import Agency, AgencyContact, PartnerUser
from tenants.models import Tenant
from tours.models import (
    BookingQuestion,
    CancellationTier,
    Category,
    Channel,
    Destination,
    ItineraryDay,
    Option,
    PriceList,
    PromoCode,
    Rate,
    Season,
    Surcharge,
    TaxRate,
    Tour,
    TourCategory,
    TourTranslation,
    UnitType,
)
from tours.sanitize import sanitize_description


def seed_catalogue(tenant: Tenant, password: str) -> User:
    """The tenant's demo catalogue and partner agency (inside its tenant context); returns the partner's user."""
    spec = CATALOGUES[tenant.slug]
    today = timezone.localdate()
    destinations = {
        slug: Destination.objects.get_or_create(
            slug=slug, defaults={"name": name, "country": spec["country"]}
        )[0]
        for name, slug in spec["destinations"]
    }
    categories = {
        slug: Category.objects.get_or_create(slug=slug, defaults={"name": name})[0]
        for name, slug in spec["categories"]
    }
    tax_name, tax_percent = spec["tax"]
    tax = TaxRate.objects.get_or_create(name=tax_name, defaults={"percent": tax_percent, "inclusive": True})[
        0
    ]
    retail = _price_list(f"Retail {spec['retail']}", Channel.RETAIL, spec["retail"], tax)
    trade = _price_list(f"Trade {spec['trade']}", Channel.TRADE, spec["trade"], None)
    lists = [(retail, lambda amount: amount), (trade, spec["to_trade"])]
    if spec["extra_list"]:
        name, currency, convert = spec["extra_list"]
        lists.append((_price_list(name, Channel.RETAIL, currency, tax), convert))
    season = _season(retail, spec["season"], today)

    for tour_spec in spec["tours"]:
        tour = Tour.objects.filter(slug=tour_spec["slug"]).first()
        if tour is None:
            tour = _create_tour(tour_spec, spec, destinations, categories)
            _create_prices(tour, tour_spec, lists, retail, season)
        for option in tour.options.all():
            _schedule(option, tour_spec, today)

    PromoCode.objects.get_or_create(
        code=spec["promo"]["code"], defaults={**spec["promo"], "channel": Channel.RETAIL}
    )
    return _partner(tenant, spec, password)


def _price_list(name: str, channel: str, currency: str, tax: TaxRate | None) -> PriceList:
    return PriceList.objects.get_or_create(
        name=name, defaults={"channel": channel, "currency": currency, "tax_rate": tax}
    )[0]


def _season(price_list: PriceList, season_spec, today: dt.date) -> Season:
    name, (start_month, start_day), (end_month, end_day) = season_spec
    existing = Season.objects.filter(price_list=price_list, name=name).first()
    if existing is not None:
        return existing
    start = dt.date(today.year, start_month, start_day)
    end = dt.date(
        today.year + (1 if (end_month, end_day) < (start_month, start_day) else 0), end_month, end_day
    )
    if end < today:  # this year's has passed: next year's
        start, end = start.replace(year=start.year + 1), end.replace(year=end.year + 1)
    return Season.objects.create(price_list=price_list, name=name, start_date=start, end_date=end, priority=1)


def _create_tour(tour_spec: dict, spec: dict, destinations: dict, categories: dict) -> Tour:
    title, translated_title = tour_spec["title"]
    summary, translated_summary = tour_spec["summary"]
    days = tour_spec.get("days", [])
    point, latitude, longitude = tour_spec["meeting"]
    description = f"<p>{summary}</p>" + (
        "<ol>" + "".join(f"<li>{day}</li>" for day in days) + "</ol>" if days else ""
    )
    tour = Tour.objects.create(
        slug=tour_spec["slug"],
        title=title,
        summary=summary,
        description=sanitize_description(description),
        inclusions="Guide\nTransport" if days or tour_spec.get("minutes", 0) >= 300 else "Guide",
        exclusions="Tips",
        meeting_point=point,
        meeting_latitude=Decimal(latitude) if latitude else None,
        meeting_longitude=Decimal(longitude) if longitude else None,
        duration_minutes=tour_spec.get("minutes") or len(days) * 24 * 60,
        languages=["en", spec["translation"]] if spec["translation"] != "en" else ["en"],
        difficulty=tour_spec.get("difficulty", Tour.Difficulty.EASY),
        time_zone=spec["time_zone"],
        destination=destinations[tour_spec["destination"]],
        status=Tour.Status.PUBLISHED,
    )
    TourCategory.objects.bulk_create(
        [
            TourCategory(tenant_id=tour.tenant_id, tour=tour, category=categories[slug])
            for slug in tour_spec["categories"]
        ]
    )
    TourTranslation.objects.create(
        tour=tour,
        language=spec["translation"],
        title=translated_title,
        summary=translated_summary,
        description=sanitize_description(f"<p>{translated_summary}</p>"),
    )
    ItineraryDay.objects.bulk_create(
        [
            ItineraryDay(tenant_id=tour.tenant_id, tour=tour, day=number, title=day_title)
            for number, day_title in enumerate(days or [title], start=1)
        ]
    )
    CancellationTier.objects.bulk_create(
        [
            CancellationTier(
                tenant_id=tour.tenant_id, tour=tour, days_before=days_before, refund_percent=percent
            )
            for days_before, percent in ((30, 100), (7, 50), (1, 0))
        ]
    )
    BookingQuestion.objects.bulk_create(
        [
            BookingQuestion(
                tenant_id=tour.tenant_id,
                tour=tour,
                code=code,
                text=text,
                scope=scope,
                required=required,
                position=n,
            )
            for n, (code, text, scope, required) in enumerate(spec["questions"])
        ]
    )
    UnitType.objects.bulk_create(
        [
            UnitType(
                tenant_id=tour.tenant_id, tour=tour, code="adult", kind="adult", name="Adult", min_age=12
            ),
            UnitType(
                tenant_id=tour.tenant_id,
                tour=tour,
                code="child",
                kind="child",
                name="Child",
                min_age=4,
                max_age=11,
                position=1,
            ),
            UnitType(
                tenant_id=tour.tenant_id,
                tour=tour,
                code="infant",
                kind="infant",
                name="Infant",
                min_age=0,
                max_age=3,
                counts_toward_capacity=False,
                max_per_booking=2,
                position=2,
            ),
        ]
    )
    Option.objects.bulk_create(
        [
            Option(
                tenant_id=tour.tenant_id,
                tour=tour,
                code=code,
                name=name,
                is_private=private,
                position=n,
                max_participants=PRIVATE_CAPACITY if private else None,
            )
            for n, (code, name, private) in enumerate(tour_spec["options"])
        ]
    )
    return tour


def _create_prices(tour: Tour, tour_spec: dict, lists, retail: PriceList, season: Season) -> None:
    units = {unit.code: unit for unit in tour.unit_types.all()}
    rates, surcharges = [], []
    for option in tour.options.all():
        adult = _hundreds(tour_spec["price"] * (PRIVATE_FACTOR if option.is_private else 1))
        base = {"adult": adult, "child": _hundreds(adult * CHILD_FACTOR), "infant": 0}
        for price_list, convert in lists:
            for code, amount in base.items():
                rates.append(
                    Rate(price_list=price_list, option=option, unit_type=units[code], amount=convert(amount))
                )
        for code in ("adult", "child"):  # the season is dearer, on the retail list
            rates.append(
                Rate(
                    price_list=retail,
                    season=season,
                    option=option,
                    unit_type=units[code],
                    amount=_hundreds(base[code] * 1.2),
                )
            )
        if option.is_private:
            surcharges.append(
                Surcharge(
                    price_list=retail, option=option, name="Private vehicle", amount=round(adult / 2, -2)
                )
            )
    for row in (*rates, *surcharges):
        row.tenant_id = tour.tenant_id
    Rate.objects.bulk_create(rates)
    Surcharge.objects.bulk_create(surcharges)


def _hundreds(amount: float) -> int:
    """Whole major units for two-decimal currencies (the demo's base prices), as an integer of minor units."""
    return int(round(amount / 100)) * 100


def _schedule(option: Option, tour_spec: dict, today: dt.date) -> None:
    schedule = option.schedules.first()
    if schedule is None:
        schedule = inventory_services.create_schedule(
            option,
            today,
            today + dt.timedelta(days=DEPARTURE_DAYS),
            tour_spec["weekdays"],
            [dt.time.fromisoformat(time) for time in tour_spec["times"]],
            PRIVATE_CAPACITY if option.is_private else tour_spec["capacity"],
            120,
        )
    inventory_services.generate_departures(schedule)


def _partner(tenant: Tenant, spec: dict, password: str) -> User:
    agency = Agency.objects.filter(legal_name=spec["agency"]["legal_name"]).first()
    if agency is None:
        agency = partner_services.create_agency(actor=None, **spec["agency"])
        AgencyContact.objects.create(agency=agency, name="Reservations desk", email=spec["agency"]["email"])
        partner_services.save_contract(
            agency, actor=None, valid_from=dt.date(timezone.localdate().year, 1, 1), **spec["contract"]
        )
    email = f"partner@{tenant.slug}.demo"
    booker = PartnerUser.objects.filter(user__email=email).select_related("user").first()
    if booker is None:
        booker = partner_services.add_partner_user(
            agency, email=email, full_name=f"{agency} booker", is_agency_admin=True, actor=None
        )
    user = booker.user
    if not user.has_usable_password():
        user.set_password(password)
        user.save(update_fields=["password"])
    if not Allotment.objects.filter(agency=agency).exists():
        # A block of seats on the flagship tour's next departures that are far enough out to release later.
        flagship = Option.objects.get(tour__slug=spec["tours"][0]["slug"], code="shared")
        soon = timezone.now() + dt.timedelta(days=14)
        for departure in Departure.objects.filter(option=flagship, starts_at__gte=soon).order_by("starts_at")[
            :8
        ]:
            inventory_services.create_allotment(
                agency, departure, 4, departure.starts_at - dt.timedelta(days=7)
            )
    return user
