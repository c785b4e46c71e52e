"""Demo data for `make run`: two tenants with one staff user per role, and a platform administrator; each
tenant's catalogue (tours, prices, six months of departures) and a partner agency with its booker.

Idempotent: a second run creates nothing, changes nothing and prints the same logins.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import urllib.request
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

import inventory.services as inventory_services
from accounts import mfa
from accounts.models import User
from bookings import services as booking_services
from bookings.links import manage_url
from bookings.models import Booking
from inventory.models import Allotment, Departure
from partners import services as partner_services
from partners.models import Agency, AgencyContact, PartnerUser
from tenants.context import tenant_context
from tenants.models import Membership, Tenant
from tenants.roles import MFA_REQUIRED_ROLES, Role
from tenants.services import create_tenant
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

DEMO_PASSWORD = "tourops-demo-2026"

# Demo data as plain dicts of mixed values, read by key.
DEMO_TENANTS: list[dict[str, Any]] = [
    {
        "slug": "sahara",
        "name": "Sahara Trails DMC",
        "kind": Tenant.Kind.DMC,
        "base_currency": "MAD",
        "time_zone": "Africa/Casablanca",
        "default_language": "fr",
        "legal": {
            "legal_name": "Sahara Trails SARL",
            "legal_address": "12 Rue de la Liberté\n40000 Marrakech\nMorocco",
            "tax_id": "ICE 001234567000089",
            "contact_email": "bookings@sahara.demo",
            "contact_phone": "+212 524 000 000",
        },
    },
    {
        "slug": "nordlys",
        "name": "Nordlys Adventures",
        "kind": Tenant.Kind.TOUR_OPERATOR,
        "base_currency": "NOK",
        "time_zone": "Europe/Oslo",
        "default_language": "en",
        "legal": {
            "legal_name": "Nordlys Adventures AS",
            "legal_address": "Storgata 1\n9008 Tromsø\nNorway",
            "tax_id": "NO 912 345 678 MVA",
            "contact_email": "post@nordlys.demo",
            "contact_phone": "+47 77 00 00 00",
        },
    },
]
PLATFORM_ADMIN = "admin@platform.demo"


def _email(role: str, slug: str) -> str:
    return f"{role.replace('_', '-')}@{slug}.demo"


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--port", default="8000", help="Port shown in the printed URLs.")

    @transaction.atomic
    def handle(self, *args, **options):
        rows, manage_pages = [], []
        admin = self._user(PLATFORM_ADMIN, "Platform Admin", superuser=True)
        rows.append(
            ("platform", f"http://platform.localhost:{options['port']}/admin/", admin, "platform admin")
        )
        for spec in DEMO_TENANTS:
            spec = dict(spec)
            legal = spec.pop("legal")
            tenant = Tenant.objects.filter(slug=spec["slug"]).first()
            if tenant is None:
                tenant = create_tenant(
                    **spec, host=f"{spec['slug']}.localhost", owner_email=_email(Role.OWNER, spec["slug"])
                )
                Tenant.objects.filter(pk=tenant.pk).update(**legal)
                tenant.refresh_from_db()
            with tenant_context(tenant):
                for role in Role:
                    user = self._user(_email(role, tenant.slug), f"{tenant.name} {role.label}")
                    if not Membership.objects.filter(user=user).exists():
                        Membership.objects.create(user=user, role=role)
                    if role in MFA_REQUIRED_ROLES:
                        self._enrol(user)
                    rows.append(
                        (
                            tenant.slug,
                            f"http://{tenant.slug}.localhost:{options['port']}/admin/",
                            user,
                            role.label,
                        )
                    )
                partner = seed_catalogue(tenant, DEMO_PASSWORD)
                rows.append(
                    (
                        tenant.slug,
                        f"http://{tenant.slug}.localhost:{options['port']}/api/v1/",
                        partner,
                        "Partner (API)",
                    )
                )
                seed_payments(tenant, options["port"])
                retail_booking = seed_bookings(tenant, partner)
                if retail_booking is not None:
                    manage_pages.append((tenant.slug, retail_booking))
        self._print(rows)
        for slug, booking in manage_pages:
            self.stdout.write(
                f"  {slug:<8} a traveller's booking {booking.reference} (lead email {booking.lead_email}): "
                f"{manage_url(booking)}"
            )

    def _user(self, email: str, full_name: str, superuser: bool = False) -> User:
        user = User.objects.filter(email=email).first()
        if user is not None and not user.has_usable_password():  # the owner create_tenant made
            user.set_password(DEMO_PASSWORD)
            user.full_name = full_name
            user.save(update_fields=["password", "full_name"])
        if user is None:
            user = User.objects.create_user(email, DEMO_PASSWORD, full_name=full_name)
            if superuser:
                user.is_superuser = user.is_staff = True
                user.save(update_fields=["is_superuser", "is_staff"])
                self._enrol(user)
        return user

    def _enrol(self, user: User) -> None:
        if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
            TOTPDevice.objects.create(user=user, name="Demo authenticator", confirmed=True)
            mfa.issue_recovery_codes(user)

    def _print(self, rows) -> None:
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD})")
        for site, url, user, role in rows:
            line = f"  {site:<8} {role:<15} {user.email:<26} {url}"
            device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
            if device is not None:
                secret = base64.b32encode(device.bin_key).decode().rstrip("=")
                static = StaticDevice.objects.filter(user=user).first()
                token = static.token_set.order_by("id").first() if static else None
                line += f"\n{'':<28}MFA: TOTP secret {secret}"
                if token is not None:
                    line += f" · recovery code {token.token}"
            self.stdout.write(line)


# --- the demo catalogue ---------------------------------------------------------------------------------------
# Prices are in minor units of the tenant's base currency (MAD centimes, NOK øre) for an adult on the shared
# option; the other prices derive from it. Text is in the tenant's default language, with one translation.

WEEKDAYS_ALL = 127
CATALOGUES: dict[str, dict[str, Any]] = {
    "sahara": {
        "translation": "en",
        "time_zone": "Africa/Casablanca",
        "destinations": [("Marrakech", "marrakech"), ("Merzouga", "merzouga"), ("Fès", "fes")],
        "country": "MA",
        "categories": [("Désert", "desert"), ("Culture", "culture"), ("Randonnée", "trekking")],
        "tax": ("TVA 10 %", Decimal("10")),
        "retail": "MAD",
        "trade": "EUR",
        "to_trade": lambda mad_centimes: round(mad_centimes / 10.8 / 100) * 100,  # whole euros
        "extra_list": None,
        "season": ("Fêtes de fin d'année", (12, 20), (1, 5)),
        "promo": {"code": "BIENVENUE10", "kind": "percent", "percent": Decimal("10"), "max_uses": 500},
        "agency": {
            "legal_name": "Horizons Lointains SARL",
            "trading_name": "Horizons Lointains",
            "country": "FR",
            "currency": "EUR",
            "email": "resa@horizons-lointains.demo",
        },
        "contract": {"model": "net", "credit_limit": 1_500_000, "payment_terms_days": 30},
        "tours": [
            {
                "slug": "trois-jours-merzouga",
                "title": ("Trois jours dans le désert de Merzouga", "Three days in the Merzouga desert"),
                "summary": (
                    "Dunes de l'Erg Chebbi, nuit en bivouac.",
                    "Erg Chebbi dunes, a night in a camp.",
                ),
                "destination": "merzouga",
                "categories": ["desert"],
                "days": ["Marrakech – Ouarzazate", "Gorges du Dadès – Merzouga", "Merzouga – Marrakech"],
                "difficulty": "moderate",
                "meeting": ("Place Jemaa el-Fna, Marrakech", "31.625800", "-7.989300"),
                "options": [("shared", "Groupe partagé", False), ("private", "Privé en 4x4", True)],
                "weekdays": 1 | 4 | 16 | 32,
                "times": ["07:00"],
                "capacity": 16,
                "price": 240_000,
            },
            {
                "slug": "medina-marrakech",
                "title": ("Visite de la médina de Marrakech", "Marrakech medina walk"),
                "summary": (
                    "Souks, riads et la médersa Ben Youssef.",
                    "Souks, riads and the Ben Youssef madrasa.",
                ),
                "destination": "marrakech",
                "categories": ["culture"],
                "minutes": 240,
                "meeting": ("Koutoubia, Marrakech", "31.623700", "-7.993800"),
                "options": [("shared", "Groupe partagé", False)],
                "weekdays": WEEKDAYS_ALL,
                "times": ["09:30", "15:00"],
                "capacity": 12,
                "price": 45_000,
            },
            {
                "slug": "atlas-imlil",
                "title": ("Randonnée dans l'Atlas depuis Imlil", "High Atlas trek from Imlil"),
                "summary": (
                    "Villages berbères et vue sur le Toubkal.",
                    "Berber villages and views of Toubkal.",
                ),
                "destination": "marrakech",
                "categories": ["trekking"],
                "minutes": 540,
                "difficulty": "challenging",
                "meeting": ("Imlil, place du village", "31.137200", "-7.919700"),
                "options": [("shared", "Groupe partagé", False), ("private", "Guide privé", True)],
                "weekdays": 2 | 8 | 32 | 64,
                "times": ["08:00"],
                "capacity": 10,
                "price": 85_000,
            },
            {
                "slug": "fes-artisans",
                "title": ("Fès, souks et artisans", "Fes souks and craftsmen"),
                "summary": ("Tanneries, dinandiers et tisserands.", "Tanneries, coppersmiths and weavers."),
                "destination": "fes",
                "categories": ["culture"],
                "minutes": 300,
                "meeting": ("Bab Boujloud, Fès", "34.061900", "-4.983600"),
                "options": [("shared", "Groupe partagé", False)],
                "weekdays": 63,
                "times": ["10:00"],
                "capacity": 14,
                "price": 50_000,
            },
            {
                "slug": "nuit-agafay",
                "title": ("Dîner sous les étoiles à Agafay", "Dinner under the stars in Agafay"),
                "summary": (
                    "Coucher de soleil et dîner dans le désert de pierre.",
                    "Sunset and dinner in the stone desert.",
                ),
                "destination": "marrakech",
                "categories": ["desert"],
                "minutes": 360,
                "meeting": ("Prise en charge à votre hôtel", None, None),
                "options": [("shared", "Dîner", False), ("camel", "Dîner et balade à dos de chameau", False)],
                "weekdays": WEEKDAYS_ALL,
                "times": ["17:00"],
                "capacity": 30,
                "price": 70_000,
            },
        ],
        "questions": [
            ("pickup_hotel", "Hôtel ou riad de prise en charge", "booking", True),
            ("diet", "Régime alimentaire ou allergies", "traveller", False),
        ],
    },
    "nordlys": {
        "translation": "nb",
        "time_zone": "Europe/Oslo",
        "destinations": [("Tromsø", "tromso"), ("Lofoten", "lofoten")],
        "country": "NO",
        "categories": [("Northern lights", "aurora"), ("Fjords", "fjords"), ("Winter activities", "winter")],
        "tax": ("MVA 12 %", Decimal("12")),
        "retail": "NOK",
        "trade": "NOK",
        "to_trade": lambda nok_ore: round(nok_ore * 0.8 / 100) * 100,
        # Japanese travellers book in yen: a zero-decimal currency (minor unit = 1 yen), ~14 JPY per NOK.
        "extra_list": ("Retail JPY", "JPY", lambda nok_ore: round(nok_ore / 100 * 14 / 100) * 100),
        "season": ("Aurora peak", (1, 15), (3, 15)),
        "promo": {"code": "AURORA500", "kind": "fixed", "amount": 50_000, "currency": "NOK", "max_uses": 200},
        "agency": {
            "legal_name": "Nordic Dreams Travel AB",
            "trading_name": "Nordic Dreams",
            "country": "SE",
            "currency": "NOK",
            "email": "bookings@nordic-dreams.demo",
        },
        "contract": {"model": "commission", "commission_percent": Decimal("15"), "credit_limit": 20_000_000},
        "tours": [
            {
                "slug": "aurora-chase",
                "title": ("Northern lights chase by minibus", "Nordlysjakt med minibuss"),
                "summary": ("We drive to where the sky is clear.", "Vi kjører dit himmelen er klar."),
                "destination": "tromso",
                "categories": ["aurora"],
                "minutes": 360,
                "meeting": ("Tromsø Visitor Centre, Samuel Arnesens gate 5", "69.648200", "18.958400"),
                "options": [("shared", "Shared minibus", False), ("private", "Private car", True)],
                "weekdays": WEEKDAYS_ALL,
                "times": ["19:00"],
                "capacity": 16,
                "price": 149_000,
            },
            {
                "slug": "fjord-cruise",
                "title": ("Fjord cruise to Kvaløya", "Fjordcruise til Kvaløya"),
                "summary": (
                    "Sea eagles, whales in season, fish soup on board.",
                    "Havørn, hval i sesong og fiskesuppe.",
                ),
                "destination": "tromso",
                "categories": ["fjords"],
                "minutes": 240,
                "meeting": ("Tromsø harbour, Prostneset", "69.649400", "18.962900"),
                "options": [("shared", "Cruise", False)],
                "weekdays": 4 | 32 | 64,
                "times": ["10:00"],
                "capacity": 40,
                "price": 99_000,
            },
            {
                "slug": "husky-sledding",
                "title": ("Husky sledding", "Hundekjøring"),
                "summary": ("Drive your own team through the valley.", "Kjør ditt eget spann gjennom dalen."),
                "destination": "tromso",
                "categories": ["winter"],
                "minutes": 300,
                "meeting": ("Tromsø Visitor Centre", "69.648200", "18.958400"),
                "options": [("shared", "Self-drive sled", False)],
                "weekdays": WEEKDAYS_ALL,
                "times": ["09:00", "13:00"],
                "capacity": 12,
                "price": 245_000,
            },
            {
                "slug": "lofoten-photo",
                "title": ("Lofoten photo tour, two days", "Fototur i Lofoten, to dager"),
                "summary": (
                    "Reine, Hamnøy and the beaches of Flakstad.",
                    "Reine, Hamnøy og strendene på Flakstad.",
                ),
                "destination": "lofoten",
                "categories": ["aurora", "fjords"],
                "days": ["Svolvær – Reine", "Flakstad – Svolvær"],
                "meeting": ("Svolvær airport", "68.243300", "14.669200"),
                "options": [("shared", "Small group", False), ("private", "Private photographer", True)],
                "weekdays": 16,
                "times": ["08:00"],
                "capacity": 8,
                "price": 690_000,
            },
            {
                "slug": "snowshoe-tromsdalen",
                "title": ("Snowshoe hike in Tromsdalen", "Truger i Tromsdalen"),
                "summary": (
                    "An easy hike with hot chocolate by the fire.",
                    "En lett tur med kakao ved bålet.",
                ),
                "destination": "tromso",
                "categories": ["winter"],
                "minutes": 180,
                "meeting": ("Arctic Cathedral, Tromsdalen", "69.648000", "18.987400"),
                "options": [("shared", "Guided group", False)],
                "weekdays": 2 | 8 | 32,
                "times": ["11:00"],
                "capacity": 14,
                "price": 89_000,
            },
        ],
        "questions": [
            ("pickup", "Where should we pick you up?", "booking", True),
            ("boot_size", "Boot size (EU)", "traveller", False),
        ],
    },
}
DEPARTURE_DAYS = 182
PRIVATE_CAPACITY = 6
PRIVATE_FACTOR = 1.6
CHILD_FACTOR = 0.7


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


# --- demo bookings ------------------------------------------------------------------------------------------------


def demo_gateway_keys(slug: str) -> dict[str, str]:
    """Test credentials of a demo tenant's gateway accounts at the local fakes (the launcher registers the
    webhooks with the same secrets)."""
    return {
        "stripe_publishable": f"pk_test_demo_{slug}",
        "stripe_secret": f"sk_test_demo_{slug}",
        "stripe_webhook_secret": f"whsec_demo_{slug}",
        "paypal_client_id": f"demo-{slug}-client",
        "paypal_client_secret": f"demo-{slug}-secret",
        "paypal_webhook_id": f"WH-DEMO-{slug.upper()}",
    }


# Short balance periods so that nearly every demo date takes a deposit (real operators use 30 days or more).
DEMO_PAYMENT_TERMS = {
    "nordlys": {
        "name": "30% deposit, balance 3 days before departure",
        "kind": "deposit",
        "deposit_percent": Decimal(30),
        "balance_days_before": 3,
    },
    "sahara": {
        "name": "3 installments, the last 3 days before departure",
        "kind": "installments",
        "installment_count": 3,
        "balance_days_before": 3,
    },
}


def seed_payments(tenant: Tenant, port: str) -> None:
    """Stripe and PayPal test accounts (at the local fakes) and default payment terms, once per tenant; the
    tenant's webhook endpoints registered at the fakes, as one would in the gateways' dashboards."""
    from payments.models import GatewayAccount, PaymentTerms

    _register_fake_webhooks(tenant.slug, port)
    keys = demo_gateway_keys(tenant.slug)
    if not GatewayAccount.objects.exists():
        GatewayAccount.objects.create(
            provider=GatewayAccount.Provider.STRIPE,
            public_key=keys["stripe_publishable"],
            secret_key=keys["stripe_secret"],
            webhook_secret=keys["stripe_webhook_secret"],
        )
        GatewayAccount.objects.create(
            provider=GatewayAccount.Provider.PAYPAL,
            public_key=keys["paypal_client_id"],
            secret_key=keys["paypal_client_secret"],
            webhook_secret=keys["paypal_webhook_id"],
        )
    terms = DEMO_PAYMENT_TERMS.get(tenant.slug)
    if terms and not PaymentTerms.objects.exists():
        PaymentTerms.objects.create(is_default=True, retry_days=[1, 3, 7], **terms)


def _register_fake_webhooks(slug: str, port: str) -> None:
    if not (settings.STRIPE_API_BASE or "").startswith("http://127.0.0.1"):
        return  # real gateways: their dashboards hold the endpoints
    keys = demo_gateway_keys(slug)
    base = f"http://{slug}.localhost:{port}/payments/webhooks"
    _post_json(
        f"{settings.STRIPE_API_BASE}/_config/webhooks/{slug}",
        {"url": f"{base}/stripe/", "secret": keys["stripe_webhook_secret"]},
    )
    if settings.PAYPAL_API_BASE:
        _post_json(
            f"{settings.PAYPAL_API_BASE}/_fake/webhooks",
            {
                "url": f"{base}/paypal/",
                "webhook_id": keys["paypal_webhook_id"],
                "client_id": keys["paypal_client_id"],
            },
        )


def _post_json(url: str, payload: dict) -> None:
    request = urllib.request.Request(  # noqa: S310 - the local fake gateways
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5):  # noqa: S310
        pass


def seed_bookings(tenant: Tenant, partner: User) -> Booking | None:
    """Two confirmed bookings to look at (once per tenant): one the partner agency booked on account, one a
    traveller paid by bank transfer. Their emails and PDFs are made by the worker as soon as it starts. Returns the
    traveller's booking (its manage link is printed)."""
    from payments.services.offline import record_offline_payment

    if Booking.objects.exists():
        return Booking.objects.filter(channel=Booking.Channel.RETAIL).order_by("created_at").first()
    agency = PartnerUser.objects.get(user=partner).agency
    soon = timezone.now() + dt.timedelta(days=10)
    departures = list(
        Departure.objects.filter(starts_at__gte=soon, status=Departure.Status.OPEN)
        .select_related("option__tour")
        .order_by("starts_at")[:40]
    )
    if not departures:
        return None  # a catalogue without departures ahead (edited by hand): nothing to book
    trade_departure = departures[0]
    retail_departure = next((d for d in departures if d.tour_id != trade_departure.tour_id), departures[-1])
    language = tenant.default_language

    def traveller(first: str, last: str) -> booking_services.TravellerDetails:
        return booking_services.TravellerDetails(unit_code="adult", first_name=first, last_name=last)

    trade = booking_services.create_booking(
        holds=[
            inventory_services.place_hold(trade_departure, {"adult": 2}, "trade", "demo-trade", agency=agency)
        ],
        lead=booking_services.Lead(name="Marta Keller", email="marta.keller@example.com"),
        channel=Booking.Channel.TRADE,
        language=language,
        agency=agency,
        agent_reference="DEMO-4711",
        on_account=True,
        travellers=[traveller("Marta", "Keller"), traveller("Jonas", "Keller")],
    )
    booking_services.confirm_booking(trade, reason="Demo booking")
    retail = booking_services.create_booking(
        holds=[inventory_services.place_hold(retail_departure, {"adult": 2}, "retail", "demo-retail")],
        lead=booking_services.Lead(name="Ana Lima", email="traveller@example.com", phone="+351 912 345 678"),
        channel=Booking.Channel.RETAIL,
        language=language,
        travellers=[traveller("Ana", "Lima"), traveller("Rui", "Lima")],
        consent={"terms_version": "2026-01", "marketing_opt_in": False, "ip_address": "127.0.0.1"},
    )
    record_offline_payment(
        retail, amount=retail.total, method="bank_transfer", reference="DEMO-TRANSFER-1", actor=None
    )
    return booking_services.confirm_booking(Booking.objects.get(pk=retail.pk), reason="Paid by bank transfer")
