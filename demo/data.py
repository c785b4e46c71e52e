"""The demo tenants, their catalogues and payment terms, as data (prices in minor units)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tenants.models import Tenant

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
