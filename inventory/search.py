"""Tour search and listings: PostgreSQL full-text search plus filters (dates with seats, price) and sorting, cached
per catalogue version. Here rather than in ``tours``: the dates and prices come from the departures on sale.

Text: a tour's own text is in its tenant's default language and carries a weighted tsvector (title A, summary B,
description C) built with that language's configuration; each ``TourTranslation`` carries one in its own language
(see ``tours/migrations/0002_search.py``). A visitor searching in language L matches the tour's own text (query
parsed for the tenant's language) and the tour's translation into L (query parsed for L); both sides use a GIN
index because each query is a constant.

Caching: listings are cached 300 s under a tenant-scoped "catalogue version" that any catalogue change bumps
after commit (``bump_catalogue``; signals wired by ``connect_catalogue_signals``), so a change is never followed
by an old listing. Seat movements do not bump it (they would empty the cache on every sale): "has seats" in a
date filter and the next departure may be up to 300 s behind; the availability answer is the exact one.

Reads only; run inside ``tenant_context``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import asdict, dataclass

from django.apps import apps
from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists, F, Func, OuterRef, Subquery, Sum, Value
from django.db.models.expressions import RawSQL
from django.db.models.fields import DateTimeField, DurationField, FloatField
from django.db.models.functions import Coalesce
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from core.currencies import MINOR_UNITS
from core.errors import DomainError
from core.money import Money
from inventory.models import Departure, Hold
from tenants.context import require_tenant_id
from tenants.models import Tenant
from tours.models import Channel, Tour, TourCategory, TourTranslation
from tours.pricing import price_from

LISTING_TTL = 300
SORTS = ("relevance", "price", "-price", "next_departure")
MAX_LIMIT = 100
MAX_TEXT = 200
MAX_RANGE_DAYS = 366
PRICE_WINDOW_DAYS = 366  # without a date range, "from" prices look at departures this far ahead


# --- catalogue version -----------------------------------------------------------------------------------------


def catalogue_version_key(tenant_id: uuid.UUID | str) -> str:
    return f"catalogue:v:{tenant_id}"


def catalogue_version(tenant_id: uuid.UUID | str) -> int:
    key = catalogue_version_key(tenant_id)
    version = cache.get(key)
    if version is None:
        cache.add(key, 1, timeout=None)
        version = cache.get(key, 1)
    return int(version)


def _bump(tenant_id: uuid.UUID | str) -> None:
    key = catalogue_version_key(tenant_id)
    try:
        cache.incr(key)
    except ValueError:  # no version yet: nothing cached under it either
        cache.add(key, 2, timeout=None)


def bump_catalogue(tenant_id: uuid.UUID | str) -> None:
    """After commit (bumping before would let a reader cache the old rows under the new version)."""
    transaction.on_commit(lambda: _bump(tenant_id))


# Changes to these make listings (and availability prices) stale. Departure: a new one, a status change, a moved
# date. Bulk writes (bulk_create, QuerySet.update) send no signals: their callers call bump_catalogue themselves.
WATCHED_MODELS = (
    "tours.Tour",
    "tours.TourTranslation",
    "tours.TourCategory",
    "tours.Destination",
    "tours.Category",
    "tours.Option",
    "tours.UnitType",
    "tours.PriceList",
    "tours.Season",
    "tours.Rate",
    "tours.TaxRate",
    "inventory.Departure",
)


def _on_catalogue_change(sender, instance, **kwargs) -> None:
    if instance.tenant_id is not None:
        bump_catalogue(instance.tenant_id)


def connect_catalogue_signals() -> None:
    """Call once from an AppConfig.ready(); idempotent (dispatch uids)."""
    for label in WATCHED_MODELS:
        model = apps.get_model(label)
        post_save.connect(_on_catalogue_change, sender=model, dispatch_uid=f"catalogue-save:{label}")
        post_delete.connect(_on_catalogue_change, sender=model, dispatch_uid=f"catalogue-delete:{label}")


# --- the query -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchQuery:
    text: str = ""
    language: str | None = None
    destination: str | None = None
    category: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    price_min: int | None = None  # minor units of ``currency``
    price_max: int | None = None
    currency: str | None = None  # default: the tenant's base currency
    duration_min: int | None = None  # minutes
    duration_max: int | None = None
    guiding_language: str | None = None
    sort: str = "relevance"
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True, slots=True)
class TourListing:
    id: uuid.UUID
    slug: str
    title: str
    summary: str
    destination: str | None
    duration_minutes: int
    languages: tuple[str, ...]
    rank: float
    next_departure: dt.datetime | None
    price_from: Money | None


@dataclass(frozen=True, slots=True)
class SearchResults:
    total: int
    results: list[TourListing]


def _is_date(value: object) -> bool:
    return isinstance(value, dt.date) and not isinstance(value, dt.datetime)


def _validate(query: SearchQuery) -> None:
    fields: dict[str, list[str]] = {}

    def bad(name: str, message: str) -> None:
        fields.setdefault(name, []).append(message)

    if not isinstance(query.text, str) or len(query.text) > MAX_TEXT or "\x00" in query.text:
        bad("q", f"Text of at most {MAX_TEXT} characters.")
    if query.sort not in SORTS:
        bad("sort", f"One of: {', '.join(SORTS)}.")
    if not isinstance(query.limit, int) or not 1 <= query.limit <= MAX_LIMIT:
        bad("limit", f"A whole number from 1 to {MAX_LIMIT}.")
    if not isinstance(query.offset, int) or query.offset < 0:
        bad("offset", "A whole number, 0 or more.")
    for name in ("date_from", "date_to"):
        value = getattr(query, name)
        if value is not None and not _is_date(value):
            bad(name, "A date (YYYY-MM-DD).")
    if _is_date(query.date_from) and _is_date(query.date_to):
        if query.date_to < query.date_from:
            bad("date_to", "Must be on or after the start date.")
        elif (query.date_to - query.date_from).days >= MAX_RANGE_DAYS:
            bad("date_to", f"The range may span at most {MAX_RANGE_DAYS} days.")
    for low, high in (("price_min", "price_max"), ("duration_min", "duration_max")):
        for name in (low, high):
            value = getattr(query, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                bad(name, "A whole number, 0 or more.")
        low_value, high_value = getattr(query, low), getattr(query, high)
        if (
            low not in fields
            and high not in fields
            and None not in (low_value, high_value)
            and high_value < low_value
        ):
            bad(high, f"Must not be below {low}.")
    if query.currency is not None and query.currency not in MINOR_UNITS:
        bad("currency", "An ISO 4217 currency code, e.g. EUR.")
    for name in ("language", "guiding_language", "destination", "category"):
        value = getattr(query, name)
        if value is not None and (
            not isinstance(value, str) or not value or len(value) > 120 or "\x00" in value
        ):
            bad(name, "A code or slug.")
    if fields:
        raise DomainError("The search is invalid.", code="invalid_search", fields=fields)


def search_tours(query: SearchQuery) -> SearchResults:
    """Published tours matching ``query``, sorted and paged; cached 300 s per catalogue version."""
    _validate(query)
    tenant_id = require_tenant_id()
    params = json.dumps(asdict(query), default=str, sort_keys=True)
    # Version first: a change committing while we compute sends readers to a newer key.
    key = f"catalogue:{tenant_id}:{catalogue_version(tenant_id)}:search:{hashlib.sha256(params.encode()).hexdigest()}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    results = _search(tenant_id, query)
    cache.set(key, results, LISTING_TTL)
    return results


def _search(tenant_id: uuid.UUID, query: SearchQuery) -> SearchResults:
    tenant_language, base_currency = Tenant.objects.values_list("default_language", "base_currency").get(
        pk=tenant_id
    )
    language = query.language or tenant_language
    currency = query.currency or base_currency
    now = timezone.now()

    tours = Tour.objects.filter(status=Tour.Status.PUBLISHED)
    if query.destination:
        tours = tours.filter(destination__slug=query.destination)
    if query.category:
        tours = tours.filter(
            Exists(TourCategory.objects.filter(tour=OuterRef("pk"), category__slug=query.category))
        )
    if query.guiding_language:
        tours = tours.filter(languages__contains=[query.guiding_language])
    if query.duration_min is not None:
        tours = tours.filter(duration_minutes__gte=query.duration_min)
    if query.duration_max is not None:
        tours = tours.filter(duration_minutes__lte=query.duration_max)

    # Bookable departures: open, sales not closed (cut-off), a seat free once lazily-expired holds count as free.
    expired_hold_seats = (
        Hold.objects.filter(departure=OuterRef("pk"), status=Hold.Status.ACTIVE, expires_at__lte=now)
        .order_by()
        .values("departure")
        .annotate(seats=Sum("seats"))
        .values("seats")
    )
    bookable = (
        Departure.objects.filter(tour=OuterRef("pk"), status=Departure.Status.OPEN)
        .alias(
            sales_close=F("starts_at") - _minutes(F("cutoff_minutes")),
            seats=F("capacity")
            - F("allotted")
            - F("held")
            - F("sold")
            + Coalesce(Subquery(expired_hold_seats), 0),
        )
        .filter(sales_close__gt=now, seats__gt=0)
    )
    if query.date_from:
        bookable = bookable.filter(local_date__gte=query.date_from)
    if query.date_to:
        bookable = bookable.filter(local_date__lte=query.date_to)
    if query.date_from or query.date_to:
        tours = tours.filter(Exists(bookable))
    tours = tours.annotate(
        next_departure=Subquery(
            bookable.order_by("starts_at").values("starts_at")[:1], output_field=DateTimeField()
        )
    )

    text = query.text.strip()
    if text:
        tours = tours.filter(pk__in=_matching_ids_sql(tenant_id, tenant_language, language, text))
        tours = tours.annotate(rank=_rank_sql(tenant_language, language, text))
    else:
        tours = tours.annotate(rank=Value(0.0, FloatField()))

    rows = list(
        tours.values(
            "id",
            "slug",
            "title",
            "summary",
            "destination__name",
            "duration_minutes",
            "languages",
            "rank",
            "next_departure",
        )
    )
    needs_all_prices = (
        query.price_min is not None or query.price_max is not None or query.sort in ("price", "-price")
    )
    prices = _prices_from([row["id"] for row in rows], query, currency, now) if needs_all_prices else {}
    if query.price_min is not None:
        rows = [row for row in rows if row["id"] in prices and prices[row["id"]].amount >= query.price_min]
    if query.price_max is not None:
        rows = [row for row in rows if row["id"] in prices and prices[row["id"]].amount <= query.price_max]

    rows.sort(key=_sort_key(query.sort, prices))
    page = rows[query.offset : query.offset + query.limit]
    if not needs_all_prices:
        prices = _prices_from([row["id"] for row in page], query, currency, now)
    translated = _translations([row["id"] for row in page], language) if language != tenant_language else {}
    return SearchResults(
        total=len(rows),
        results=[_listing(row, prices.get(row["id"]), translated.get(row["id"])) for row in page],
    )


def _minutes(expression) -> Func:
    return Func(expression, template="make_interval(mins => %(expressions)s)", output_field=DurationField())


def _matching_ids_sql(tenant_id: uuid.UUID, tenant_language: str, language: str, text: str) -> RawSQL:
    """Ids of tours whose own text or translation into ``language`` matches. Constant tsqueries: GIN-indexed."""
    sql = (
        "SELECT id FROM tours_tour WHERE tenant_id = %s AND status = 'published'"
        " AND search_vector @@ websearch_to_tsquery(tourops_search_config(%s), %s)"
    )
    params: list[object] = [tenant_id, tenant_language, text]
    if language != tenant_language:
        sql += (
            " UNION SELECT tour_id FROM tours_tourtranslation WHERE tenant_id = %s AND language = %s"
            " AND search_vector @@ websearch_to_tsquery(tourops_search_config(%s), %s)"
        )
        params += [tenant_id, language, language, text]
    return RawSQL(sql, params)  # noqa: S611 (constant SQL; every value is a parameter)


def _rank_sql(tenant_language: str, language: str, text: str) -> RawSQL:
    own = 'ts_rank("tours_tour"."search_vector", websearch_to_tsquery(tourops_search_config(%s), %s))'
    if language == tenant_language:
        return RawSQL(own, [tenant_language, text], output_field=FloatField())  # noqa: S611 (constant SQL)
    translation = (
        "COALESCE((SELECT ts_rank(tt.search_vector, websearch_to_tsquery(tourops_search_config(%s), %s))"
        ' FROM tours_tourtranslation tt WHERE tt.tenant_id = "tours_tour"."tenant_id"'
        ' AND tt.tour_id = "tours_tour"."id" AND tt.language = %s), 0)'
    )
    return RawSQL(  # noqa: S611 (constant SQL; every value is a parameter)
        f"GREATEST({own}, {translation})",
        [tenant_language, text, language, text, language],
        output_field=FloatField(),
    )


def _prices_from(tour_ids: list[uuid.UUID], query: SearchQuery, currency: str, now: dt.datetime) -> dict:
    """Lowest retail price per tour over its open departures in the date range (or the coming year)."""
    if not tour_ids:
        return {}
    today = now.date()
    first = max(query.date_from or today, today)
    last = query.date_to or today + dt.timedelta(days=PRICE_WINDOW_DAYS)
    pairs = set(
        Departure.objects.filter(
            tour_id__in=tour_ids,
            status=Departure.Status.OPEN,
            starts_at__gt=now,
            local_date__gte=first,
            local_date__lte=last,
        ).values_list("tour_id", "option_id", "local_date")
    )
    if not pairs:
        return {}
    prices = price_from(
        {option_id for _, option_id, _ in pairs},
        {day for _, _, day in pairs},
        channel=Channel.RETAIL,
        currency=currency,
    )
    lowest: dict[uuid.UUID, Money] = {}
    for tour_id, option_id, day in pairs:
        price = prices.get((option_id, day))
        if price is not None and (tour_id not in lowest or price < lowest[tour_id]):
            lowest[tour_id] = price
    return lowest


def _sort_key(sort: str, prices: dict):
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    if sort == "price":
        return lambda row: (
            row["id"] not in prices,
            prices[row["id"]].amount if row["id"] in prices else 0,
            row["title"],
        )
    if sort == "-price":
        return lambda row: (
            row["id"] not in prices,
            -prices[row["id"]].amount if row["id"] in prices else 0,
            row["title"],
        )
    if sort == "next_departure":
        return lambda row: (row["next_departure"] is None, row["next_departure"] or far, row["title"])
    return lambda row: (-row["rank"], row["title"])


def _translations(tour_ids: list[uuid.UUID], language: str) -> dict[uuid.UUID, tuple[str, str]]:
    if not tour_ids:
        return {}
    rows = TourTranslation.objects.filter(tour_id__in=tour_ids, language=language).values_list(
        "tour_id", "title", "summary"
    )
    return {tour_id: (title, summary) for tour_id, title, summary in rows}


def _listing(row: dict, price: Money | None, translated: tuple[str, str] | None) -> TourListing:
    title, summary = translated if translated else (row["title"], row["summary"])
    return TourListing(
        id=row["id"],
        slug=row["slug"],
        title=title,
        summary=summary or row["summary"],
        destination=row["destination__name"],
        duration_minutes=row["duration_minutes"],
        languages=tuple(row["languages"]),
        rank=float(row["rank"]),
        next_departure=row["next_departure"],
        price_from=price,
    )
