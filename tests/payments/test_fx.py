"""Exchange rates for reporting: imports are all-or-nothing with per-row errors; a day's rate is the latest on or
before it (or the inverse pair's); conversions respect each currency's minor unit (JPY 0, KWD 3 decimals)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from bookings.models import Booking
from core.errors import DomainError
from core.money import Money
from payments.models import ExchangeRate, Payment, Refund
from payments.services import fx
from tenants.context import tenant_context
from tests.factories import make_tenant

pytestmark = pytest.mark.django_db

JUNE_1, JUNE_10, JUNE_20 = dt.date(2026, 6, 1), dt.date(2026, 6, 10), dt.date(2026, 6, 20)


def _rates(*rows) -> list[dict]:
    return [dict(zip(fx.RATE_COLUMNS, row, strict=True)) for row in rows]


@pytest.fixture
def tenant():
    return make_tenant(base_currency="EUR", time_zone="Europe/Lisbon")


def test_import_stores_every_row_and_replaces_a_rate_for_the_same_day(tenant):
    with tenant_context(tenant):
        fx.import_rates(
            _rates(("eur", "JPY", "160.5", "2026-06-01"), ("KWD", "EUR", "2.95", "2026-06-01")), "imported"
        )
        fx.import_rates(_rates(("EUR", "JPY", "161", "2026-06-01")), "manual")

        stored = {(r.base, r.quote, r.valid_on): (r.rate, r.source) for r in ExchangeRate.objects.all()}
    assert stored == {
        ("EUR", "JPY", JUNE_1): (Decimal("161"), "manual"),
        ("KWD", "EUR", JUNE_1): (Decimal("2.95"), "imported"),
    }


def test_one_bad_row_saves_nothing_and_every_bad_row_is_named(tenant):
    rows = _rates(
        ("EUR", "JPY", "160", "2026-06-01"),
        ("EUR", "XXX", "1.1", "2026-06-01"),
        ("EUR", "USD", "-1", "2026-06-01"),
        ("EUR", "USD", "1,08", "2026-06-01"),
        ("EUR", "EUR", "1", "2026-06-01"),
        ("EUR", "USD", "1.08", "01/06/2026"),
        ("EUR", "JPY", "161", "2026-06-01"),
        ("EUR", "", "1.08", "2026-06-01"),
    )
    with tenant_context(tenant):
        with pytest.raises(DomainError) as refused:
            fx.import_rates(rows, "imported")
        assert ExchangeRate.objects.count() == 0

    errors = refused.value.fields["rows"]
    assert refused.value.message == "No rates were imported: 7 rows need correcting."
    assert errors == [
        "Row 2: quote 'XXX' is not an ISO 4217 currency code.",
        "Row 3: rate -1 must be above 0.",
        "Row 4: rate '1,08' is not a number (use a dot for decimals, e.g. 11.4235).",
        "Row 5: base and quote are both EUR.",
        "Row 6: valid_on '01/06/2026' is not a date (YYYY-MM-DD).",
        "Row 7: the same pair and day as row 1.",
        "Row 8: missing quote.",
    ]


def test_rate_on_takes_the_latest_rate_on_or_before_the_day_or_the_inverse_pair(tenant):
    with tenant_context(tenant):
        fx.import_rates(
            _rates(("EUR", "NOK", "11.5", "2026-06-01"), ("EUR", "NOK", "11.8", "2026-06-10")), "imported"
        )
        assert fx.rate_on("EUR", "NOK", dt.date(2026, 5, 31)) is None
        assert fx.rate_on("EUR", "NOK", JUNE_1) == Decimal("11.5")
        assert fx.rate_on("EUR", "NOK", dt.date(2026, 6, 9)) == Decimal("11.5")
        assert fx.rate_on("EUR", "NOK", JUNE_20) == Decimal("11.8")
        assert fx.rate_on("NOK", "EUR", JUNE_20) == Decimal(1) / Decimal("11.8")
        assert fx.rate_on("EUR", "USD", JUNE_20) is None
        assert fx.rate_on("EUR", "EUR", JUNE_20) == Decimal(1)

        # A newer rate of the opposite pair wins over an older direct one.
        fx.import_rates(_rates(("NOK", "EUR", "0.08", "2026-06-15")), "imported")
        assert fx.rate_on("EUR", "NOK", JUNE_20) == Decimal(1) / Decimal("0.08")
        assert fx.rate_on("EUR", "NOK", dt.date(2026, 6, 14)) == Decimal("11.8")


def test_zero_and_three_decimal_currencies_convert_through_major_units(tenant):
    with tenant_context(tenant):
        fx.import_rates(
            _rates(("EUR", "JPY", "160.25", "2026-06-01"), ("KWD", "EUR", "2.9537", "2026-06-01")), "imported"
        )
        # ¥16,025 = €100.00; ¥1 = €0.00624… → 1 cent.
        assert fx.in_base_currency(16025, "JPY", JUNE_1) == Money(10000, "EUR")
        assert fx.in_base_currency(1, "JPY", JUNE_1) == Money(1, "EUR")
        # 12.345 KWD (12345 fils) × 2.9537 = €36.4634… → 3646 cents.
        assert fx.in_base_currency(12345, "KWD", JUNE_1) == Money(3646, "EUR")
        assert fx.in_base_currency(999, "EUR", JUNE_1) == Money(999, "EUR")
        assert fx.in_base_currency(100, "USD", JUNE_1) is None
        # The other way: €100 → ¥16,025; €1.00 → 0.339 KWD (1 / 2.9537 = 0.33856… → 339 fils).
        assert fx.convert(10000, "EUR", "JPY", fx.rate_on("EUR", "JPY", JUNE_1)) == Money(16025, "JPY")
        assert fx.convert(100, "EUR", "KWD", fx.rate_on("EUR", "KWD", JUNE_1)) == Money(339, "KWD")


def _booking(currency: str) -> Booking:
    booking = Booking(
        channel="retail",
        language="en",
        lead_name="Ana",
        lead_email="ana@example.com",
        currency=currency,
        total=10**9,
    )
    booking.save()
    return booking


def _payment(booking: Booking, amount: int, day: dt.date, status: str = "succeeded") -> Payment:
    at = timezone.make_aware(dt.datetime.combine(day, dt.time(12)))
    return Payment.objects.create(
        booking=booking,
        provider="offline",
        method="cash",
        amount=amount,
        currency=booking.currency,
        status=status,
        succeeded_at=at if status == "succeeded" else None,
    )


def _refund(payment: Payment, amount: int, day: dt.date, status: str = "succeeded") -> Refund:
    at = timezone.make_aware(dt.datetime.combine(day, dt.time(12)))
    return Refund.objects.create(
        payment=payment,
        booking=payment.booking,
        amount=amount,
        currency=payment.currency,
        status=status,
        request_key=f"r-{payment.pk}-{amount}",
        idempotency_key=f"r-{payment.pk}-{amount}",
        reason="test",
        succeeded_at=at if status == "succeeded" else None,
    )


def test_payments_report_nets_refunds_per_currency_and_converts_each_day_at_its_rate(tenant):
    with tenant_context(tenant):
        fx.import_rates(
            _rates(
                ("EUR", "JPY", "160", "2026-06-01"),
                ("EUR", "JPY", "200", "2026-06-10"),
                ("KWD", "EUR", "3", "2026-06-01"),
            ),
            "imported",
        )
        eur, jpy, kwd, usd = (_booking(code) for code in ("EUR", "JPY", "KWD", "USD"))
        _payment(eur, 5000, JUNE_1)
        paid_eur = _payment(eur, 2550, JUNE_10)
        _refund(paid_eur, 550, JUNE_10)
        _refund(paid_eur, 1000, JUNE_10, status="pending")  # not money gone yet
        _payment(eur, 7000, JUNE_10, status="failed")  # never money
        _payment(eur, 9999, dt.date(2026, 7, 1))  # outside the period
        _payment(jpy, 16000, JUNE_1)  # €100 at 160
        _payment(jpy, 20000, JUNE_10)  # €100 at 200
        paid_kwd = _payment(kwd, 10500, JUNE_1)  # 10.500 KWD
        _refund(paid_kwd, 500, JUNE_10)  # 0.500 KWD back → net 10.000 KWD = €30.00

        report = fx.payments_report(JUNE_1, JUNE_20)
        assert report.base_currency == "EUR"
        assert [
            (line.currency, line.received, line.refunded, line.net, line.in_base) for line in report.lines
        ] == [
            ("EUR", 7550, 550, 7000, Money(7000, "EUR")),
            ("JPY", 36000, 0, 36000, Money(20000, "EUR")),
            ("KWD", 10500, 500, 10000, Money(3000, "EUR")),
        ]
        assert report.total_in_base == Money(30000, "EUR") and report.missing_rates == []

        _payment(usd, 1000, JUNE_10)
        with_usd = fx.payments_report(JUNE_1, JUNE_20)
        assert with_usd.missing_rates == ["USD"] and with_usd.total_in_base is None
        assert [line.net for line in with_usd.lines] == [7000, 36000, 10000, 1000]

        with pytest.raises(DomainError):
            fx.payments_report(JUNE_20, JUNE_1)


def test_rates_of_another_tenant_are_not_used(tenant):
    other = make_tenant()
    with tenant_context(other):
        fx.import_rates(_rates(("EUR", "JPY", "160", "2026-06-01")), "imported")
    with tenant_context(tenant):
        assert fx.rate_on("EUR", "JPY", JUNE_10) is None
        assert fx.in_base_currency(16000, "JPY", JUNE_10) is None
