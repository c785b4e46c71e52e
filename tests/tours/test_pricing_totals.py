"""Quote totals as properties (hypothesis): whatever the lines, discount, tax and commission, in 2-, 0- and
3-decimal currencies, the total is the sum of the lines that count, discounts never go below zero, tax is rounded
once and agrees with Money's rules, and a snapshot round-trips exactly."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from core.money import Money
from tours.pricing import DiscountTerms, LineKind, Quote, QuoteLine, TaxTerms, compose

CURRENCIES = ["EUR", "JPY", "KRW", "BHD", "KWD", "JOD"]
SETTINGS = settings(max_examples=300, deadline=None)

percents = st.integers(min_value=0, max_value=100_000).map(lambda thousandths: Decimal(thousandths) / 1000)
commission_percents = st.none() | st.integers(min_value=0, max_value=10_000).map(lambda c: Decimal(c) / 100)


@st.composite
def priced_lines(draw, currency: str) -> list[QuoteLine]:
    lines = []
    for index in range(draw(st.integers(min_value=1, max_value=4))):
        unit = Money(draw(st.integers(min_value=0, max_value=10**9)), currency)
        count = draw(st.integers(min_value=1, max_value=40))
        lines.append(QuoteLine(LineKind.UNIT, f"u{index}", f"Unit {index}", count, unit, unit * count))
    for index in range(draw(st.integers(min_value=0, max_value=2))):
        amount = Money(draw(st.integers(min_value=0, max_value=10**8)), currency)
        lines.append(QuoteLine(LineKind.SURCHARGE, f"s{index}", f"Surcharge {index}", 1, amount, amount))
    return lines


@st.composite
def scenarios(draw):
    currency = draw(st.sampled_from(CURRENCIES))
    lines = draw(priced_lines(currency))
    discount = draw(
        st.one_of(
            st.none(),
            percents.map(lambda p: DiscountTerms(code="PCT", percent=p)),
            st.integers(min_value=0, max_value=10**10).map(
                lambda a: DiscountTerms(code="FIX", amount=Money(a, currency))
            ),
        )
    )
    tax = draw(st.none() | st.builds(TaxTerms, st.just("VAT"), percents, st.booleans()))
    return currency, lines, discount, tax, draw(commission_percents)


@SETTINGS
@given(scenarios())
def test_totals_add_up(scenario):
    currency, priced, discount, tax, commission_percent = scenario
    lines, totals = compose(currency, priced, discount, tax, commission_percent)

    assert totals.subtotal.amount == sum(line.amount.amount for line in priced)
    assert 0 <= totals.discount.amount <= totals.subtotal.amount
    counted = [line for line in lines if not line.informational]
    assert totals.total.amount == sum(line.amount.amount for line in counted)
    assert totals.total.amount >= 0
    assert all(line.amount.currency == currency for line in lines)

    taxable = totals.subtotal - totals.discount
    if tax is None:
        assert totals.tax == Money.zero(currency) and totals.total == taxable
    elif tax.inclusive:
        assert totals.total == taxable
        assert totals.tax == taxable.tax_included(tax.percent)
        tax_line = next(line for line in lines if line.kind == LineKind.TAX)
        assert tax_line.informational and tax_line.label.startswith("of which")
    else:
        # Rounded once for the whole quote: within half a minor unit of the exact tax on the taxable amount.
        assert abs(Decimal(totals.tax.amount) - Decimal(taxable.amount) * tax.percent / 100) <= Decimal("0.5")
        assert totals.total == taxable + totals.tax

    if discount is not None and discount.percent is not None:
        exact = Decimal(totals.subtotal.amount) * discount.percent / 100
        assert abs(Decimal(totals.discount.amount) - exact) <= Decimal("0.5")
    if discount is not None and discount.amount is not None:
        assert totals.discount.amount == min(discount.amount.amount, totals.subtotal.amount)

    if commission_percent is None:
        assert totals.commission is None
    else:
        # On the price after discount, never on tax added on top of it.
        priced_total = totals.subtotal - totals.discount
        assert totals.commission == priced_total.percent(commission_percent)
        assert 0 <= totals.commission.amount <= totals.total.amount


@SETTINGS
@given(scenarios())
def test_snapshot_round_trips_through_json(scenario):
    currency, priced, discount, tax, commission_percent = scenario
    lines, totals = compose(currency, priced, discount, tax, commission_percent)
    quote = Quote(
        currency=currency,
        channel="retail",
        pricing_model="retail",
        price_list_id=uuid.uuid4(),
        option_id=uuid.uuid4(),
        departure_id=uuid.uuid4(),
        local_date=dt.date(2026, 7, 1),
        agency_id=None,
        units=(("adult", 2), ("child", 1)),
        lines=lines,
        subtotal=totals.subtotal,
        discount=totals.discount,
        tax=totals.tax,
        total=totals.total,
        commission=totals.commission,
        promo_code=None if discount is None else discount.code,
        computed_at=dt.datetime(2026, 6, 1, 12, 30, tzinfo=dt.UTC),
    )
    stored = json.loads(json.dumps(quote.as_snapshot()))
    assert Quote.from_snapshot(stored) == quote


def test_commission_is_on_the_price_not_on_tax_added_on_top():
    line = QuoteLine(
        kind=LineKind.UNIT,
        code="adult",
        label="Adult",
        quantity=2,
        unit_amount=Money(10000, "EUR"),
        amount=Money(20000, "EUR"),
        informational=False,
        percent=None,
    )
    exclusive = TaxTerms(name="VAT 20 %", percent=Decimal("20"), inclusive=False)

    _, totals = compose("EUR", [line], None, exclusive, Decimal("10"))

    assert totals.total == Money(24000, "EUR")  # 200.00 + 40.00 VAT
    assert totals.commission == Money(2000, "EUR")  # 10 % of 200.00, not of 240.00
