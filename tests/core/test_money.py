"""Money: exact minor units across 2-, 0- (JPY, KRW) and 3-decimal (BHD, KWD, JOD) currencies. Property tests
(hypothesis) for allocation, percent rounding, inclusive/exclusive tax and the decimal round trip, plus the
worked examples people check by hand."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.money import CurrencyMismatch, Money, round_minor, total

CURRENCIES = ["EUR", "USD", "GBP", "JPY", "KRW", "BHD", "KWD", "JOD"]

currencies = st.sampled_from(CURRENCIES)
amounts = st.integers(min_value=-(10**12), max_value=10**12)
non_negative = st.integers(min_value=0, max_value=10**12)
# Tax and discount rates as stored: up to 100 % with at most three decimals (TaxRate.percent).
rates = st.integers(min_value=0, max_value=100_000).map(lambda thousandths: Decimal(thousandths) / 1000)
positive_rates = st.integers(min_value=1, max_value=100_000).map(
    lambda thousandths: Decimal(thousandths) / 1000
)
money = st.builds(Money, amounts, currencies)

SETTINGS = settings(max_examples=300, deadline=None)


# --- allocation -----------------------------------------------------------------------------------------------


@SETTINGS
@given(money, st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=12))
@example(Money(10000, "EUR"), [1, 1, 1])
@example(Money(1, "JPY"), [1, 1, 1])
@example(Money(-100, "BHD"), [1, 2])
def test_allocation_adds_up_exactly_and_each_part_is_its_share_rounded(amount, weights):
    if sum(weights) == 0:
        with pytest.raises(ValueError):
            amount.allocate(weights)
        return
    parts = amount.allocate(weights)
    assert len(parts) == len(weights)
    assert sum(part.amount for part in parts) == amount.amount
    assert all(part.currency == amount.currency for part in parts)
    whole = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        share_floor = amount.amount * weight // whole
        assert share_floor <= part.amount <= share_floor + 1


def test_allocation_gives_leftover_units_to_the_first_parts():
    assert [p.amount for p in Money(10000, "EUR").allocate([1, 1, 1])] == [3334, 3333, 3333]
    assert [p.amount for p in Money(100, "JPY").allocate([1, 1, 1])] == [34, 33, 33]
    assert [p.amount for p in Money(1000, "KWD").allocate([1, 2])] == [334, 666]


def test_allocation_refuses_bad_weights():
    for weights in ([], [0, 0], [1, -1]):
        with pytest.raises(ValueError):
            Money(100, "EUR").allocate(weights)


# --- percent --------------------------------------------------------------------------------------------------


@SETTINGS
@given(money, rates)
def test_percent_is_within_half_a_minor_unit_of_the_exact_value(amount, rate):
    exact = Decimal(amount.amount) * rate / 100
    result = amount.percent(rate)
    assert result.currency == amount.currency
    assert abs(Decimal(result.amount) - exact) <= Decimal("0.5")
    # Half away from zero: a tie goes to the larger magnitude, so the sign never flips and -x mirrors x.
    assert (-amount).percent(rate) == -result


@SETTINGS
@given(non_negative, rates, currencies)
def test_percent_of_a_non_negative_amount_stays_between_zero_and_the_amount(amount, rate, currency):
    result = Money(amount, currency).percent(rate).amount
    assert 0 <= result <= amount


def test_percent_rounds_half_away_from_zero():
    assert Money(5, "EUR").percent(10).amount == 1  # 0.5 cent → 1
    assert Money(-5, "EUR").percent(10).amount == -1
    assert Money(4, "EUR").percent(10).amount == 0  # 0.4 → 0
    assert Money(1250, "JPY").percent("12.5").amount == 156  # 156.25 yen → 156
    assert Money(1234, "BHD").percent("12.5").amount == 154  # 154.25 fils → 154
    assert round_minor(Decimal("2.5")) == 3 and round_minor(Decimal("-2.5")) == -3


# --- tax ------------------------------------------------------------------------------------------------------


@SETTINGS
@given(non_negative, rates, currencies)
@example(1000, Decimal(20), "EUR")
@example(999, Decimal("7.5"), "JPY")
@example(1, Decimal("0.001"), "BHD")
def test_inclusive_and_exclusive_tax_agree(net, rate, currency):
    """Net + exclusive tax = gross; the tax inside that gross, computed back, is the same exclusive tax."""
    net_amount = Money(net, currency)
    tax = net_amount.tax_on(rate)
    gross = net_amount + tax
    assert gross.tax_included(rate) == tax


@SETTINGS
@given(non_negative, positive_rates, currencies)
def test_tax_included_is_the_gross_minus_the_rounded_net(gross, rate, currency):
    tax = Money(gross, currency).tax_included(rate)
    exact_net = Decimal(gross) * 100 / (100 + rate)
    assert 0 <= tax.amount <= gross
    assert abs(Decimal(gross - tax.amount) - exact_net) <= Decimal("0.5")


def test_tax_examples():
    assert Money(12000, "EUR").tax_included(20) == Money(2000, "EUR")
    assert Money(10000, "EUR").tax_on(20) == Money(2000, "EUR")
    assert Money(11000, "JPY").tax_included(10) == Money(1000, "JPY")
    assert Money(1050, "JPY").tax_included(10) == Money(95, "JPY")  # net 954.54… → 955 yen, tax 95
    assert Money(10500, "BHD").tax_on(10) == Money(1050, "BHD")  # 10.500 BHD + 1.050 BHD VAT
    assert Money(11550, "BHD").tax_included(10) == Money(1050, "BHD")


# --- decimal round trip ---------------------------------------------------------------------------------------


@SETTINGS
@given(money)
def test_decimal_round_trip(amount):
    assert Money.from_decimal(amount.to_decimal(), amount.currency) == amount
    assert Money.from_decimal(str(amount.to_decimal()), amount.currency) == amount
    assert Money.from_dict(amount.as_dict()) == amount


@SETTINGS
@given(amounts, currencies)
def test_one_decimal_more_than_the_currency_has_is_refused(minor, currency):
    exponent = Money(0, currency).exponent
    too_precise = Decimal(minor * 10 + 5).scaleb(-(exponent + 1))
    with pytest.raises(ValueError, match="decimals"):
        Money.from_decimal(too_precise, currency)


def test_minor_units_per_currency():
    assert Money.from_decimal("12.50", "EUR").amount == 1250
    assert Money.from_decimal("1500", "JPY").amount == 1500
    assert Money.from_decimal("1500", "KRW").amount == 1500
    assert Money.from_decimal("12.345", "BHD").amount == 12345
    assert Money.from_decimal("0.001", "KWD").amount == 1
    assert Money.from_decimal("7.1", "JOD").amount == 7100
    assert str(Money(150000, "JPY")) == "150,000 JPY"
    assert str(Money(12345, "BHD")) == "12.345 BHD"
    assert str(Money(1250, "EUR")) == "12.50 EUR"
    with pytest.raises(ValueError):
        Money.from_decimal("10.5", "JPY")
    with pytest.raises(ValueError):
        Money.from_decimal("1.0001", "BHD")


# --- safety ---------------------------------------------------------------------------------------------------


def test_currencies_never_mix():
    with pytest.raises(CurrencyMismatch):
        Money(100, "EUR") + Money(100, "USD")
    with pytest.raises(CurrencyMismatch):
        Money(100, "EUR") < Money(100, "JPY")
    with pytest.raises(CurrencyMismatch):
        total([Money(1, "EUR"), Money(1, "BHD")], "EUR")


def test_floats_and_unknown_codes_are_refused():
    with pytest.raises(TypeError):
        Money(1.5, "EUR")
    with pytest.raises(TypeError):
        Money(True, "EUR")
    with pytest.raises(ValueError):
        Money(1, "XYZ")
    with pytest.raises(TypeError):
        Money(100, "EUR") * 1.5


def test_an_amount_of_any_size_is_written_out():
    """Found by a probe: an amount of 10^30 typed in a form failed while the refusal was being written."""
    assert Money(10**32, "EUR").format("en") == "€1,000,000,000,000,000,000,000,000,000,000.00"
    assert Money(-(10**35), "JPY").format("fr").endswith("\xa0JPY")
