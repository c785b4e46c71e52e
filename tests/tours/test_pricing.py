"""The quote selector and price_from against real PostgreSQL: which list and which rate apply, lines and totals
with exact minor units (EUR, JPY, BHD), trade pricing by contract, snapshots, and a specific error for every kind
of bad input."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.errors import DomainError
from core.money import Money
from partners.models import Agency, Contract
from tenants.context import tenant_context
from tests.catalogue import (
    make_agency,
    make_contract,
    make_departure,
    make_option,
    make_price_list,
    make_tour,
    make_unit_types,
)
from tests.factories import make_tenant
from tours.models import Channel, PriceList, PromoCode, Rate, Season, Surcharge, TaxRate
from tours.pricing import LineKind, Quote, price_from, quote

WEDNESDAY = dt.date(2026, 7, 15)
WEDNESDAY_BIT = 1 << WEDNESDAY.weekday()  # 4
AT = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def departure_on(option, local_date: dt.date, hour_utc: int = 8):
    # Lisbon is UTC+1 in summer: 08:00 UTC is 09:00 local on the same date.
    starts_at = dt.datetime.combine(local_date, dt.time(hour_utc), tzinfo=dt.UTC)
    return make_departure(option, starts_at=starts_at)


def add_season(
    price_list, option, unit_types, amounts, *, start, end, weekdays=0b1111111, priority=0, name=None
):
    season = Season.objects.create(
        price_list=price_list,
        name=name or f"Season {start}",
        start_date=start,
        end_date=end,
        weekdays=weekdays,
        priority=priority,
    )
    for code, amount in amounts.items():
        Rate.objects.create(
            price_list=price_list, season=season, option=option, unit_type=unit_types[code], amount=amount
        )
    return season


def make_promo(code="SUMMER", **fields) -> PromoCode:
    defaults = {"kind": PromoCode.Kind.PERCENT, "percent": Decimal(10)}
    defaults.update(fields)
    if defaults["kind"] == PromoCode.Kind.FIXED:
        defaults.pop("percent", None)
    return PromoCode.objects.create(code=code, **defaults)


def amounts_of(q: Quote, kind: str) -> list[int]:
    return [line.amount.amount for line in q.lines if line.kind == kind]


@pytest.fixture
def tenant(db):
    return make_tenant()


@pytest.fixture
def cat(tenant):
    """A tour with one option, adult/child/infant, a retail EUR list (adult 50.00, child 25.00, infant 0) and a
    departure on Wednesday 15 July 2026; everything runs in the tenant's context."""
    with tenant_context(tenant):
        tour = make_tour()
        option = make_option(tour)
        units = make_unit_types(tour)
        retail = make_price_list(
            option, units, {"adult": 5000, "child": 2500, "infant": 0}, name="Retail EUR"
        )
        departure = departure_on(option, WEDNESDAY)
        yield type("Catalogue", (), dict(tour=tour, option=option, units=units, retail=retail, dep=departure))


def retail_quote(cat, units=None, **kwargs) -> Quote:
    return quote(
        cat.option, cat.dep, units or {"adult": 2, "child": 1, "infant": 1}, Channel.RETAIL, at=AT, **kwargs
    )


# --- lines and totals -----------------------------------------------------------------------------------------


def test_base_quote_lines_and_totals(cat):
    q = retail_quote(cat)

    assert q.currency == "EUR"  # the tenant's base currency by default
    assert q.price_list_id == cat.retail.pk and q.pricing_model == "retail"
    assert [(line.code, line.quantity, line.unit_amount.amount, line.amount.amount) for line in q.lines] == [
        ("adult", 2, 5000, 10000),
        ("child", 1, 2500, 2500),
        ("infant", 1, 0, 0),
    ]
    assert (q.subtotal, q.discount, q.tax, q.total) == (
        Money(12500, "EUR"),
        Money(0, "EUR"),
        Money(0, "EUR"),
        Money(12500, "EUR"),
    )
    assert q.commission is None and q.unit_counts == {"adult": 2, "child": 1, "infant": 1}


def test_zero_counts_give_no_line(cat):
    q = retail_quote(cat, {"adult": 1, "child": 0})
    assert [line.code for line in q.lines] == ["adult"]
    assert q.total == Money(5000, "EUR")


def test_season_rate_beats_base_rate_on_covered_dates_only(cat):
    add_season(
        cat.retail,
        cat.option,
        cat.units,
        {"adult": 7000},
        start=dt.date(2026, 7, 1),
        end=dt.date(2026, 7, 31),
    )
    september = departure_on(cat.option, dt.date(2026, 9, 16))

    in_season = retail_quote(cat, {"adult": 1, "child": 1})
    off_season = quote(cat.option, september, {"adult": 1}, Channel.RETAIL, at=AT)

    assert amounts_of(in_season, LineKind.UNIT) == [7000, 2500]  # the season has no child rate: base applies
    assert off_season.total == Money(5000, "EUR")


def test_season_applies_only_on_its_weekdays(cat):
    july = (dt.date(2026, 7, 1), dt.date(2026, 7, 31))
    weekend = 0b1100000  # Saturday + Sunday
    add_season(
        cat.retail, cat.option, cat.units, {"adult": 9000}, start=july[0], end=july[1], weekdays=weekend
    )
    saturday = departure_on(cat.option, dt.date(2026, 7, 18))

    assert retail_quote(cat, {"adult": 1}).total == Money(5000, "EUR")  # Wednesday: base
    assert quote(cat.option, saturday, {"adult": 1}, Channel.RETAIL, at=AT).total == Money(9000, "EUR")

    add_season(
        cat.retail, cat.option, cat.units, {"adult": 6000}, start=july[0], end=july[1], weekdays=WEDNESDAY_BIT
    )
    assert retail_quote(cat, {"adult": 1}).total == Money(6000, "EUR")


def test_highest_priority_season_wins_when_seasons_overlap(cat):
    add_season(
        cat.retail,
        cat.option,
        cat.units,
        {"adult": 6000},
        start=dt.date(2026, 6, 1),
        end=dt.date(2026, 9, 30),
        priority=1,
    )
    add_season(
        cat.retail,
        cat.option,
        cat.units,
        {"adult": 8000},
        start=dt.date(2026, 7, 10),
        end=dt.date(2026, 7, 20),
        priority=5,
    )
    add_season(
        cat.retail,
        cat.option,
        cat.units,
        {"adult": 1000},
        start=dt.date(2026, 7, 1),
        end=dt.date(2026, 7, 31),
        priority=0,
    )

    assert retail_quote(cat, {"adult": 1}).total == Money(8000, "EUR")


def test_higher_priority_list_wins_and_inactive_or_out_of_dates_lists_are_ignored(cat):
    make_price_list(cat.option, cat.units, {"adult": 4000}, name="Promo list", priority=5)
    make_price_list(cat.option, cat.units, {"adult": 1000}, name="Inactive", priority=9, is_active=False)
    make_price_list(
        cat.option,
        cat.units,
        {"adult": 2000},
        name="Last year",
        priority=9,
        valid_from=dt.date(2025, 1, 1),
        valid_to=dt.date(2025, 12, 31),
    )
    make_price_list(cat.option, cat.units, {"adult": 3000}, name="Dollars", priority=9, currency="USD")
    assert retail_quote(cat, {"adult": 1}).total == Money(4000, "EUR")


def test_a_list_without_rates_for_the_option_does_not_shadow_one_with_rates(cat):
    other_option = make_option(cat.tour, code="private")
    make_price_list(other_option, cat.units, {"adult": 99000}, name="Private only", priority=50)
    q = retail_quote(cat, {"adult": 1})
    assert q.price_list_id == cat.retail.pk and q.total == Money(5000, "EUR")


def test_surcharges_per_booking_list_wide_and_for_this_option_only(cat):
    Surcharge.objects.create(price_list=cat.retail, name="Booking fee", amount=300)
    Surcharge.objects.create(price_list=cat.retail, option=cat.option, name="Private vehicle", amount=4000)
    Surcharge.objects.create(
        price_list=cat.retail, option=make_option(cat.tour, code="other"), name="Other option", amount=999
    )
    q = retail_quote(cat, {"adult": 3})
    assert [(line.label, line.amount.amount) for line in q.lines if line.kind == LineKind.SURCHARGE] == [
        ("Booking fee", 300),
        ("Private vehicle", 4000),
    ]
    assert q.subtotal == q.total == Money(15000 + 300 + 4000, "EUR")


# --- promo codes ----------------------------------------------------------------------------------------------


def test_percent_promo_discounts_the_subtotal_and_is_case_insensitive(cat):
    make_promo("summer", percent=Decimal("12.5"))
    q = retail_quote(cat, {"adult": 1, "child": 1}, promo_code="  Summer ")
    # 12.5 % of 75.00 = 9.375 → 9.38
    assert q.discount == Money(938, "EUR") and amounts_of(q, LineKind.DISCOUNT) == [-938]
    assert q.total == Money(7500 - 938, "EUR") and q.promo_code == "SUMMER"


def test_fixed_promo_never_takes_the_total_below_zero(cat):
    make_promo("TENOFF", kind=PromoCode.Kind.FIXED, amount=1000, currency="EUR")
    make_promo("HUGE", kind=PromoCode.Kind.FIXED, amount=10**9, currency="EUR")
    assert retail_quote(cat, {"adult": 1}, promo_code="tenoff").total == Money(4000, "EUR")
    big = retail_quote(cat, {"adult": 1}, promo_code="huge")
    assert big.discount == Money(5000, "EUR") and big.total == Money(0, "EUR")


# --- tax ------------------------------------------------------------------------------------------------------


def test_inclusive_tax_is_shown_as_of_which(cat):
    cat.retail.tax_rate = TaxRate.objects.create(name="VAT 20 %", percent=Decimal(20), inclusive=True)
    cat.retail.save()
    q = retail_quote(cat, {"adult": 2, "child": 1})  # 125.00 gross
    tax_line = next(line for line in q.lines if line.kind == LineKind.TAX)
    assert tax_line.informational and tax_line.label == "of which VAT 20 %"
    assert q.tax == Money(2083, "EUR")  # 125.00 − 125.00 / 1.2 = 20.833… → 20.83
    assert q.total == Money(12500, "EUR")


def test_exclusive_tax_is_added_once_on_the_discounted_amount(cat):
    cat.retail.tax_rate = TaxRate.objects.create(
        name="Sales tax 7.25 %", percent=Decimal("7.25"), inclusive=False
    )
    cat.retail.save()
    make_promo("TEN", percent=Decimal(10))
    # Three lines of 33.33 rounded per line would differ; once per quote: (99.99 − 10.00) × 7.25 % = 6.524… → 6.52
    Rate.objects.filter(price_list=cat.retail, unit_type=cat.units["adult"]).update(amount=3333)
    q = retail_quote(cat, {"adult": 3}, promo_code="ten")
    assert (q.subtotal.amount, q.discount.amount, q.tax.amount, q.total.amount) == (9999, 1000, 652, 9651)


def test_jpy_quote_in_whole_yen(tenant):
    jpy_tenant = make_tenant(base_currency="JPY", time_zone="Asia/Tokyo")
    with tenant_context(jpy_tenant):
        tour = make_tour(time_zone="Asia/Tokyo")
        option = make_option(tour)
        units = make_unit_types(tour)
        price_list = make_price_list(option, units, {"adult": 8500, "child": 4250}, currency="JPY")
        price_list.tax_rate = TaxRate.objects.create(
            name="Consumption tax", percent=Decimal(10), inclusive=False
        )
        price_list.save()
        make_promo("HANAMI", percent=Decimal(15))
        departure = make_departure(option, starts_at=dt.datetime(2026, 4, 1, 0, 0, tzinfo=dt.UTC))

        q = quote(option, departure, {"adult": 3, "child": 1}, Channel.RETAIL, promo_code="hanami", at=AT)

    # 3 × 8,500 + 4,250 = 29,750; 15 % off = 4,462.5 → 4,463; 25,287 taxable; 10 % = 2,528.7 → 2,529
    assert q.currency == "JPY"
    assert (q.subtotal.amount, q.discount.amount, q.tax.amount, q.total.amount) == (29750, 4463, 2529, 27816)
    assert str(q.total) == "27,816 JPY"


def test_bhd_quote_in_fils(tenant):
    bhd_tenant = make_tenant(base_currency="BHD", time_zone="Asia/Bahrain")
    with tenant_context(bhd_tenant):
        tour = make_tour(time_zone="Asia/Bahrain")
        option = make_option(tour)
        units = make_unit_types(tour)
        price_list = make_price_list(option, units, {"adult": 12345, "child": 6175}, currency="BHD")
        price_list.tax_rate = TaxRate.objects.create(name="VAT 10 %", percent=Decimal(10), inclusive=True)
        price_list.save()
        Surcharge.objects.create(price_list=price_list, name="Desert permit", amount=1500)
        departure = make_departure(option, starts_at=dt.datetime(2026, 11, 5, 6, 0, tzinfo=dt.UTC))

        q = quote(option, departure, {"adult": 2, "child": 1}, Channel.RETAIL, at=AT)

    # 2 × 12.345 + 6.175 + 1.500 = 32.365 BHD; of which VAT: 32.365 − 32.365 / 1.1 (29.4227… → 29.423) = 2.942
    assert q.currency == "BHD"
    assert (q.subtotal.amount, q.tax.amount, q.total.amount) == (32365, 2942, 32365)
    assert str(q.total) == "32.365 BHD"


# --- trade ----------------------------------------------------------------------------------------------------


def test_net_rate_agency_gets_the_trade_list_in_its_currency(cat):
    agency = make_agency(currency="GBP")
    make_contract(agency, model=Contract.Model.NET_RATE)
    make_price_list(
        cat.option, cat.units, {"adult": 3500, "child": 1800}, channel=Channel.TRADE, currency="GBP"
    )
    make_price_list(cat.option, cat.units, {"adult": 3900}, channel=Channel.TRADE, currency="EUR")

    q = quote(cat.option, cat.dep, {"adult": 2}, Channel.TRADE, agency=agency, at=AT)

    assert q.currency == "GBP" and q.pricing_model == "net"
    assert q.total == Money(7000, "GBP") and q.commission is None and q.agency_id == agency.pk


def test_agency_own_list_beats_a_higher_priority_general_list(cat):
    agency, other = make_agency(), make_agency()
    make_price_list(cat.option, cat.units, {"adult": 3000}, channel=Channel.TRADE, priority=10, name="Trade")
    own = make_price_list(cat.option, cat.units, {"adult": 2800}, channel=Channel.TRADE, agency=agency)
    make_price_list(cat.option, cat.units, {"adult": 100}, channel=Channel.TRADE, agency=other, priority=99)

    mine = quote(cat.option, cat.dep, {"adult": 1}, Channel.TRADE, agency=agency, at=AT)
    another = quote(cat.option, cat.dep, {"adult": 1}, Channel.TRADE, agency=make_agency(), at=AT)

    assert mine.price_list_id == own.pk and mine.total == Money(2800, "EUR")
    assert another.total == Money(3000, "EUR")  # never another agency's list


def test_commission_agency_pays_retail_and_sees_its_commission(cat):
    agency = make_agency()
    make_contract(agency, model=Contract.Model.COMMISSION, commission_percent=Decimal("12.5"))
    make_price_list(cat.option, cat.units, {"adult": 3000, "child": 1500}, channel=Channel.TRADE)
    cat.retail.tax_rate = TaxRate.objects.create(name="VAT 23 %", percent=Decimal(23), inclusive=True)
    cat.retail.save()

    q = quote(cat.option, cat.dep, {"adult": 2, "child": 1}, Channel.TRADE, agency=agency, at=AT)

    assert q.price_list_id == cat.retail.pk and q.pricing_model == "commission"
    assert q.total == Money(12500, "EUR")  # what the traveller pays: not reduced by the commission
    commission_line = next(line for line in q.lines if line.kind == LineKind.COMMISSION)
    assert commission_line.informational and commission_line.label == "Agency commission 12.5 %"
    assert q.commission == commission_line.amount == Money(1563, "EUR")  # 12.5 % of 125.00 = 15.625 → 15.63


def test_contract_in_force_on_the_departure_date_decides(cat):
    agency = make_agency()
    make_contract(
        agency,
        model=Contract.Model.COMMISSION,
        commission_percent=10,
        valid_from=dt.date(2026, 1, 1),
        valid_to=dt.date(2026, 6, 30),
    )
    make_contract(agency, model=Contract.Model.NET_RATE, valid_from=dt.date(2026, 7, 1))
    make_price_list(cat.option, cat.units, {"adult": 3000}, channel=Channel.TRADE)
    june = departure_on(cat.option, dt.date(2026, 6, 24))

    assert (
        quote(cat.option, june, {"adult": 1}, Channel.TRADE, agency=agency, at=AT).pricing_model
        == "commission"
    )
    july = quote(cat.option, cat.dep, {"adult": 1}, Channel.TRADE, agency=agency, at=AT)
    assert july.pricing_model == "net" and july.total == Money(3000, "EUR")


# --- snapshots ------------------------------------------------------------------------------------------------


def test_snapshot_round_trips_and_ignores_later_price_changes(cat):
    cat.retail.tax_rate = TaxRate.objects.create(name="VAT 6 %", percent=Decimal(6), inclusive=True)
    cat.retail.save()
    make_promo("FIVE", kind=PromoCode.Kind.FIXED, amount=500, currency="EUR")
    Surcharge.objects.create(price_list=cat.retail, name="Fee", amount=250)
    original = retail_quote(cat, promo_code="five")
    stored = json.loads(json.dumps(original.as_snapshot()))

    assert stored["currency"] == "EUR" and stored["total"] == original.total.amount
    assert stored["price_list_id"] == str(cat.retail.pk)
    assert all(isinstance(line["amount"], int) for line in stored["lines"])
    assert Quote.from_snapshot(stored) == original

    Rate.objects.filter(price_list=cat.retail).update(amount=99999)
    Surcharge.objects.filter(price_list=cat.retail).delete()
    assert retail_quote(cat, promo_code="five").total != original.total
    assert Quote.from_snapshot(stored) == original


def test_snapshot_of_unknown_version_is_refused(cat):
    stored = retail_quote(cat).as_snapshot() | {"version": 99}
    with pytest.raises(ValueError):
        Quote.from_snapshot(stored)


# --- bad input ------------------------------------------------------------------------------------------------


def assert_refused(code: str, call, *args, **kwargs) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call(*args, **kwargs)
    assert caught.value.code == code, (caught.value.code, caught.value.message)
    assert caught.value.fields, "a field error says which input is wrong"
    return caught.value


def test_no_price_list_for_the_currency_or_channel(cat):
    error = assert_refused("no_price_list", retail_quote, cat, {"adult": 1}, currency="USD")
    assert "USD" in error.message
    assert_refused("no_price_list", quote, cat.option, cat.dep, {"adult": 1}, Channel.TRADE, at=AT)


def test_a_unit_type_without_a_rate_is_named(cat):
    only_adults = make_price_list(cat.option, cat.units, {"adult": 4000}, name="Adults only", priority=5)
    error = assert_refused("no_rate", retail_quote, cat, {"adult": 1, "child": 2})
    assert "Child (child)" in error.message and only_adults.name in error.message


def test_bad_unit_counts(cat):
    assert_refused("unknown_unit", retail_quote, cat, {"adult": 1, "pensioner": 1})
    assert_refused("invalid_count", retail_quote, cat, {"adult": -1})
    assert_refused("invalid_count", retail_quote, cat, {"adult": "2"})
    assert_refused("invalid_count", retail_quote, cat, {"adult": 1.5})
    assert_refused("no_units", retail_quote, cat, {"adult": 0, "child": 0})
    assert_refused("invalid_units", quote, cat.option, cat.dep, [("adult", 1)], Channel.RETAIL)
    cat.units["child"].max_per_booking = 4
    cat.units["child"].save()
    error = assert_refused("invalid_count", retail_quote, cat, {"adult": 1, "child": 5})
    assert "Child" in error.message


def test_bad_channel_currency_departure_and_agency(cat):
    assert_refused("invalid_channel", quote, cat.option, cat.dep, {"adult": 1}, "wholesale")
    assert_refused("invalid_currency", retail_quote, cat, {"adult": 1}, currency="EURO")
    other_option = make_option(cat.tour, code="private")
    assert_refused("departure_mismatch", quote, other_option, cat.dep, {"adult": 1}, Channel.RETAIL)
    suspended = make_agency(status=Agency.Status.SUSPENDED)
    assert_refused(
        "agency_cannot_book", quote, cat.option, cat.dep, {"adult": 1}, Channel.TRADE, agency=suspended
    )


@pytest.mark.parametrize(
    ("code", "promo_fields", "quote_kwargs"),
    [
        ("promo_invalid", None, {}),
        ("promo_invalid", {"is_active": False}, {}),
        ("promo_expired", {"valid_to": AT - dt.timedelta(seconds=1)}, {}),
        ("promo_not_yet_valid", {"valid_from": AT + dt.timedelta(days=1)}, {}),
        ("promo_exhausted", {"max_uses": 3, "times_used": 3}, {}),
        ("promo_wrong_channel", {"channel": Channel.TRADE}, {}),
        ("promo_wrong_currency", {"kind": PromoCode.Kind.FIXED, "amount": 500, "currency": "USD"}, {}),
        ("promo_wrong_currency", {"currency": "GBP"}, {}),
    ],
)
def test_unusable_promo_codes(cat, code, promo_fields, quote_kwargs):
    promo = make_promo("DEAL", **promo_fields) if promo_fields is not None else None
    error = assert_refused(code, retail_quote, cat, {"adult": 1}, promo_code="deal", **quote_kwargs)
    assert "promo_code" in error.fields
    if promo is not None:
        used = promo.times_used
        promo.refresh_from_db()
        assert promo.times_used == used  # quoting never uses a code


def test_promo_valid_at_the_edges_of_its_dates(cat):
    make_promo("EDGE", valid_from=AT, valid_to=AT)
    assert retail_quote(cat, {"adult": 1}, promo_code="edge").discount == Money(500, "EUR")


# --- price from -----------------------------------------------------------------------------------------------


def test_price_from_matches_one_adult_quote_each_day_in_a_few_queries(cat):
    private = make_option(cat.tour, code="private")
    make_price_list(private, cat.units, {"adult": 20000, "child": 9000}, name="Private retail")
    add_season(
        cat.retail,
        cat.option,
        cat.units,
        {"adult": 6500},
        start=dt.date(2026, 7, 10),
        end=dt.date(2026, 7, 20),
        weekdays=0b0011111,
    )
    excl = TaxRate.objects.create(name="City tax", percent=Decimal("7.5"), inclusive=False)
    PriceList.objects.filter(name="Private retail").update(tax_rate=excl)
    dates = [dt.date(2026, 7, 1) + dt.timedelta(days=n) for n in range(31)]

    with CaptureQueriesContext(connection) as queries:
        prices = price_from([cat.option.pk, private.pk], dates, channel=Channel.RETAIL)
    assert len(queries) <= 4, [q["sql"] for q in queries.captured_queries]

    assert len(prices) == 62
    for day in dates:
        departure = departure_on(cat.option, day, hour_utc=10)
        shared = quote(cat.option, departure, {"adult": 1}, Channel.RETAIL, at=AT)
        assert prices[(cat.option.pk, day)] == shared.total, day
    assert prices[(cat.option.pk, dt.date(2026, 7, 15))] == Money(6500, "EUR")  # Wednesday in the season
    assert prices[(cat.option.pk, dt.date(2026, 7, 18))] == Money(5000, "EUR")  # Saturday: not a season day
    assert prices[(private.pk, dt.date(2026, 7, 1))] == Money(21500, "EUR")  # 200.00 + 7.5 % exclusive tax


def test_price_from_query_count_does_not_grow_with_dates_or_options(cat):
    options = [cat.option.pk] + [make_option(cat.tour, code=f"o{n}").pk for n in range(5)]
    for option_id in options[1:]:
        Rate.objects.create(
            price_list=cat.retail, option_id=option_id, unit_type=cat.units["adult"], amount=4000
        )

    def count(option_ids, days):
        dates = [dt.date(2026, 7, 1) + dt.timedelta(days=n) for n in range(days)]
        with CaptureQueriesContext(connection) as queries:
            price_from(option_ids, dates, channel=Channel.RETAIL)
        return len(queries)

    assert count(options[:1], 1) == count(options, 92)


def test_price_from_without_adults_uses_the_first_unit_type_and_skips_dates_without_a_list(cat):
    make_price_list(
        cat.option,
        cat.units,
        {"child": 1200, "infant": 300},
        name="Summer kids",
        priority=3,
        valid_from=dt.date(2026, 8, 1),
        valid_to=dt.date(2026, 8, 31),
        currency="USD",
    )
    prices = price_from(
        [cat.option.pk], [dt.date(2026, 7, 31), dt.date(2026, 8, 1)], channel=Channel.RETAIL, currency="USD"
    )
    assert prices == {(cat.option.pk, dt.date(2026, 8, 1)): Money(1200, "USD")}


def test_price_from_for_trade_follows_the_contract(cat):
    commission, net = make_agency(), make_agency()
    make_contract(commission, model=Contract.Model.COMMISSION, commission_percent=10)
    make_contract(net, model=Contract.Model.NET_RATE)
    make_price_list(cat.option, cat.units, {"adult": 3100}, channel=Channel.TRADE)
    day = [WEDNESDAY]
    key = (cat.option.pk, WEDNESDAY)

    assert price_from([cat.option.pk], day, channel=Channel.TRADE, agency=commission)[key] == Money(
        5000, "EUR"
    )
    assert price_from([cat.option.pk], day, channel=Channel.TRADE, agency=net)[key] == Money(3100, "EUR")
    assert price_from([], day, channel=Channel.RETAIL) == {}
    with pytest.raises(DomainError) as caught:
        price_from([cat.option.pk], day, channel="b2b")
    assert caught.value.code == "invalid_channel"
