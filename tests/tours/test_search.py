"""Tour search: weighted ranking per language, translations, every filter and sort, validation, the listing cache
with its catalogue version, and the plans (GIN index) on a realistic amount of data."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from core.errors import DomainError
from core.money import Money
from inventory.models import Departure, Hold
from inventory.search import SearchQuery, _matching_ids_sql, connect_catalogue_signals, search_tours
from tenants.context import tenant_context
from tenants.db import as_owner
from tests.catalogue import make_departure, make_option, make_price_list, make_tour, make_unit_types
from tests.factories import make_tenant
from tours.models import Category, Destination, Tour, TourCategory, TourTranslation


def at(month: int, day: int) -> dt.datetime:
    return dt.datetime(2030, month, day, 9, tzinfo=dt.UTC)


def titled(slug: str, **fields) -> Tour:
    return make_tour(slug=slug, title=fields.pop("title", slug.replace("-", " ").title()), **fields)


def slugs(results) -> list[str]:
    return [listing.slug for listing in results.results]


@pytest.fixture
def tenant(db):
    return make_tenant()


def test_ranking_weights_title_over_summary_over_description(tenant):
    with tenant_context(tenant):
        make_tour(
            slug="in-description", title="Old town", summary="A day out.", description="<p>Castle views</p>"
        )
        make_tour(slug="in-title", title="Castle walk", summary="A day out.")
        make_tour(slug="in-summary", title="Old quarter", summary="Ends at the castle.")
        make_tour(slug="unrelated", title="River cruise", summary="Boats.")
        make_tour(slug="draft", title="Castle secrets", status=Tour.Status.DRAFT)

        results = search_tours(SearchQuery(text="castles"))  # english stemming: castles → castl
        assert slugs(results) == ["in-title", "in-summary", "in-description"]
        assert results.total == 3
        ranks = [listing.rank for listing in results.results]
        assert ranks == sorted(ranks, reverse=True) and ranks[-1] > 0
        assert slugs(search_tours(SearchQuery(text="p"))) == []  # markup is not text


def test_a_translation_is_searched_in_its_own_language(tenant):
    with tenant_context(tenant):
        tour = make_tour(slug="hike", title="Mountain hike", summary="Up the hills.")
        TourTranslation.objects.create(
            tour=tour, language="fr", title="Randonnée en montagne", summary="Marcher dans les collines."
        )
        make_tour(slug="other", title="Wine tasting")

        french = search_tours(SearchQuery(text="randonnées montagnes", language="fr"))
        assert slugs(french) == ["hike"]
        assert french.results[0].title == "Randonnée en montagne"  # shown in the visitor's language
        assert slugs(search_tours(SearchQuery(text="hiking", language="fr"))) == [
            "hike"
        ]  # own text still counts
        assert slugs(search_tours(SearchQuery(text="randonnée"))) == []  # not in English
        assert search_tours(SearchQuery(text="hiking")).results[0].title == "Mountain hike"


def test_the_tour_text_uses_the_tenant_language(db):
    tenant = make_tenant(default_language="de")
    with tenant_context(tenant):
        make_tour(slug="wandern", title="Wanderungen im Schwarzwald", summary="Durch die Wälder")
        assert slugs(search_tours(SearchQuery(text="Wanderung"))) == ["wandern"]  # German stemming
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT tourops_search_config(l)::text FROM unnest(%s::text[]) AS l", [["nb", "pt-BR", "xx"]]
            )
            assert [row[0] for row in cursor.fetchall()] == ["norwegian", "portuguese", "simple"]


def test_filters(tenant):
    with tenant_context(tenant):
        lisbon = Destination.objects.create(name="Lisbon", slug="lisbon", country="PT")
        porto = Destination.objects.create(name="Porto", slug="porto", country="PT")
        food = Category.objects.create(name="Food", slug="food")
        short = titled("short", destination=lisbon, duration_minutes=90, languages=["en", "pt"])
        long = titled("long", destination=porto, duration_minutes=480, languages=["en"])
        titled("mid", destination=lisbon, duration_minutes=240, languages=["fr"])
        TourCategory.objects.create(tour=long, category=food)

        assert slugs(search_tours(SearchQuery(destination="lisbon", sort="relevance"))) == ["mid", "short"]
        assert slugs(search_tours(SearchQuery(category="food"))) == ["long"]
        assert slugs(search_tours(SearchQuery(guiding_language="pt"))) == ["short"]
        assert slugs(search_tours(SearchQuery(duration_min=100, duration_max=300))) == ["mid"]
        assert slugs(search_tours(SearchQuery(duration_min=240))) == ["long", "mid"]
        assert slugs(search_tours(SearchQuery(destination="nowhere"))) == []
        assert short.pk  # the short tour matched the guiding language filter above


def test_date_range_keeps_tours_with_a_bookable_departure(tenant):
    with tenant_context(tenant):
        open_seats = make_option(titled("open"))
        sold_out = make_option(titled("sold-out"))
        closed = make_option(titled("closed"))
        freed = make_option(titled("freed-by-expiry"))
        later = make_option(titled("later"))
        make_departure(open_seats, capacity=5, starts_at=at(6, 10))
        full = make_departure(sold_out, capacity=5, starts_at=at(6, 10))
        Departure.objects.filter(pk=full.pk).update(sold=5)
        make_departure(closed, capacity=5, starts_at=at(6, 10), status=Departure.Status.CLOSED)
        lapsed = make_departure(freed, capacity=2, starts_at=at(6, 12))
        Hold.objects.create(
            departure=lapsed,
            channel="retail",
            units={"adult": 2},
            seats=2,
            idempotency_key=str(uuid.uuid4()),
            expires_at=timezone.now() - dt.timedelta(minutes=1),
        )
        Departure.objects.filter(pk=lapsed.pk).update(held=2)
        make_departure(later, capacity=5, starts_at=at(7, 20))

        june = SearchQuery(date_from=dt.date(2030, 6, 1), date_to=dt.date(2030, 6, 30), sort="next_departure")
        results = search_tours(june)
        assert slugs(results) == ["open", "freed-by-expiry"]
        assert results.results[0].next_departure == at(6, 10)
        everything = search_tours(SearchQuery(sort="next_departure"))
        assert slugs(everything) == ["open", "freed-by-expiry", "later", "closed", "sold-out"]
        assert everything.results[-1].next_departure is None


def test_price_filter_and_sorts(tenant):
    with tenant_context(tenant):
        for slug, adult in (("cheap", 2000), ("dear", 9000), ("middle", 5000)):
            tour = titled(slug)
            option = make_option(tour)
            make_price_list(option, make_unit_types(tour), {"adult": adult, "child": adult // 2})
            make_departure(option)  # a month ahead: without a date range prices look a year ahead
        make_departure(make_option(titled("unpriced")))

        by_price = search_tours(SearchQuery(sort="price"))
        assert slugs(by_price) == ["cheap", "middle", "dear", "unpriced"]
        assert [listing.price_from for listing in by_price.results] == [
            Money(2000, "EUR"),
            Money(5000, "EUR"),
            Money(9000, "EUR"),
            None,
        ]
        assert slugs(search_tours(SearchQuery(sort="-price"))) == ["dear", "middle", "cheap", "unpriced"]
        assert slugs(search_tours(SearchQuery(price_min=3000, price_max=9000, sort="price"))) == [
            "middle",
            "dear",
        ]
        page = search_tours(SearchQuery(sort="price", limit=2, offset=1))
        assert (page.total, slugs(page)) == (4, ["middle", "dear"])
        assert page.results[0].price_from == Money(5000, "EUR")
        assert search_tours(SearchQuery(currency="JPY", price_min=1)).total == 0  # no JPY list


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        (SearchQuery(sort="popular"), {"sort"}),
        (SearchQuery(limit=0, offset=-1), {"limit", "offset"}),
        (SearchQuery(date_from=dt.date(2030, 2, 1), date_to=dt.date(2030, 1, 1)), {"date_to"}),
        (SearchQuery(price_min=500, price_max=100), {"price_max"}),
        (SearchQuery(duration_min=-5), {"duration_min"}),
        (SearchQuery(currency="XYZ", text="x" * 201), {"currency", "q"}),
        (SearchQuery(date_from="2030-01-01"), {"date_from"}),
    ],
)
def test_bad_searches_are_refused_with_field_errors(tenant, query, fields):
    with tenant_context(tenant), pytest.raises(DomainError) as error:
        search_tours(query)
    assert error.value.code == "invalid_search"
    assert set(error.value.fields) == fields


@pytest.mark.django_db(transaction=True)
def test_listings_are_cached_until_the_catalogue_changes(django_assert_num_queries):
    connect_catalogue_signals()
    tenant, other = make_tenant(), make_tenant()
    with tenant_context(tenant):
        tour = make_tour(slug="walk", title="City walk")
    with tenant_context(other):
        make_tour(slug="other-walk", title="City walk")

    def titles(text: str = "walk") -> list[str]:
        with tenant_context(tenant):
            return [listing.title for listing in search_tours(SearchQuery(text=text)).results]

    assert titles() == ["City walk"]
    with tenant_context(tenant), django_assert_num_queries(0):
        assert [r.title for r in search_tours(SearchQuery(text="walk")).results] == ["City walk"]

    with tenant_context(
        tenant
    ):  # without a signal (queryset update) the cached listing stands for up to 300 s
        Tour.objects.filter(pk=tour.pk).update(title="Old city walk")
    assert titles() == ["City walk"]

    with tenant_context(tenant):  # a save sends the signal: bumped after commit
        tour.refresh_from_db()
        tour.title = "Harbour walk"
        tour.save()
        assert titles() == ["City walk"]  # still the old version inside the transaction
    assert titles() == ["Harbour walk"]
    with tenant_context(tenant):
        TourTranslation.objects.create(tour=tour, language="fr", title="Promenade du port")
    with tenant_context(tenant):
        assert slugs(search_tours(SearchQuery(text="promenade", language="fr"))) == ["walk"]
        make_departure(make_option(tour), starts_at=at(6, 10))  # a new departure changes "next departure"
    with tenant_context(tenant):
        assert search_tours(SearchQuery(text="walk")).results[0].next_departure == at(6, 10)
        tour.status = Tour.Status.ARCHIVED
        tour.save()
    assert titles() == []
    with tenant_context(other):  # the other tenant's listing was never touched by these bumps
        assert [r.slug for r in search_tours(SearchQuery(text="walk")).results] == ["other-walk"]


@pytest.mark.django_db(transaction=True)
def test_text_search_plan_on_realistic_data():
    tenants = [make_tenant() for _ in range(4)]
    words = ["castle", "river", "wine", "market", "cathedral", "garden", "harbour", "museum"]
    for index, tenant in enumerate(tenants):
        with tenant_context(tenant):
            tours = Tour.objects.bulk_create(
                Tour(
                    tenant_id=tenant.pk,
                    slug=f"t{n}",
                    title=f"{words[n % 8]} tour {n}",
                    summary=f"See the {words[(n + 3) % 8]} and the {words[(n + 5) % 8]}.",
                    description="<p>" + " ".join(words[(n + k) % 8] for k in range(20)) + "</p>",
                    duration_minutes=120,
                    time_zone="Europe/Lisbon",
                    status=Tour.Status.PUBLISHED if n % 10 else Tour.Status.DRAFT,
                )
                for n in range(2500)
            )
            tours[7].title = "Azulejo workshop"
            tours[7].save()
            TourTranslation.objects.bulk_create(
                TourTranslation(tenant_id=tenant.pk, tour=tour, language="fr", title=f"Visite {tour.title}")
                for tour in tours[: 1000 + index]
            )
    with as_owner(), connection.cursor() as cursor:
        # VACUUM also merges the GIN pending lists of the bulk load, as autovacuum would have by now.
        cursor.execute("VACUUM ANALYZE tours_tour")
        cursor.execute("VACUUM ANALYZE tours_tourtranslation")

    tenant = tenants[0]
    with tenant_context(tenant):
        assert slugs(search_tours(SearchQuery(text="azulejo"))) == ["t7"]
        matching = _matching_ids_sql(tenant.pk, "en", "fr", "azulejo")
        with connection.cursor() as cursor:
            cursor.execute("SELECT proleakproof FROM pg_proc WHERE oid = 'ts_match_vq'::regproc")
            [(leakproof,)] = cursor.fetchall()
            cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + matching.sql, matching.params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
    print(plan)  # shown with -s; copied into bench/README.md
    assert "Seq Scan" not in plan, plan
    if leakproof:
        # The tsvector match may run before the row-level security check: the GIN indexes answer.
        assert "Bitmap Index Scan on tour_search_published" in plan, plan
        assert "Bitmap Index Scan on tourtranslation_search" in plan, plan
    else:
        # Under row-level security a qual may only be used in an index scan if its operator is LEAKPROOF, which
        # @@ (ts_match_vq) is not by default: the tenant-leading indexes narrow to one tenant's rows, @@ filters.
        assert "Index Cond: (tenant_id = " in plan, plan
        assert "Filter: " in plan and "search_vector @@ '''azulejo'''::tsquery" in plan, plan
