"""Exchange rates, for reporting in the tenant's base currency only: a customer is always charged in the booking's
own currency, never a converted amount.

A rate row says 1 ``base`` = ``rate`` ``quote`` on ``valid_on``. The rate for a day is the latest one on or before
it; a missing pair is answered by the inverse of the opposite pair (a tenant that stores EUR→NOK can report NOK in
EUR). Amounts are minor units: converting goes through major units so zero- and three-decimal currencies (JPY,
KWD) come out right, rounded half away from zero once, at the end.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import QuerySet, Sum
from django.db.models.functions import TruncDate

from core.currencies import MINOR_UNITS, minor_units
from core.errors import DomainError
from core.money import Money, round_minor
from payments.models import ExchangeRate, Payment, Refund
from tenants.context import require_tenant_id
from tenants.models import Tenant

RATE_COLUMNS = ("base", "quote", "rate", "valid_on")
# As the model's DecimalField(max_digits=20, decimal_places=10).
MAX_RATE_DECIMALS = 10
MAX_RATE_INTEGER_DIGITS = 10


@dataclass(frozen=True)
class RateRow:
    base: str
    quote: str
    rate: Decimal
    valid_on: dt.date


def _row_problems(row: Mapping) -> tuple[RateRow | None, list[str]]:
    problems: list[str] = []
    missing = [name for name in RATE_COLUMNS if not str(row.get(name) or "").strip()]
    if missing:
        return None, [f"missing {', '.join(missing)}"]
    base, quote = (str(row[name]).strip().upper() for name in ("base", "quote"))
    for name, code in (("base", base), ("quote", quote)):
        if code not in MINOR_UNITS:
            problems.append(f"{name} {code!r} is not an ISO 4217 currency code")
    if base == quote:
        problems.append(f"base and quote are both {base}")
    rate = None
    try:
        rate = Decimal(str(row["rate"]).strip())
    except InvalidOperation:
        problems.append(f"rate {row['rate']!r} is not a number (use a dot for decimals, e.g. 11.4235)")
    if rate is not None:
        sign, digits, exponent = rate.as_tuple()
        if not rate.is_finite() or rate <= 0:
            problems.append(f"rate {row['rate']} must be above 0")
        elif isinstance(exponent, int) and (  # always, once finite ("n", "N", "F": NaN and infinity)
            -exponent > MAX_RATE_DECIMALS or len(digits) + exponent > MAX_RATE_INTEGER_DIGITS
        ):
            problems.append(
                f"rate {row['rate']} has more than {MAX_RATE_DECIMALS} decimals or {MAX_RATE_INTEGER_DIGITS} digits "
                "before the point"
            )
    valid_on = row["valid_on"]
    if not isinstance(valid_on, dt.date):
        try:
            valid_on = dt.date.fromisoformat(str(valid_on).strip())
        except ValueError:
            problems.append(f"valid_on {row['valid_on']!r} is not a date (YYYY-MM-DD)")
            valid_on = None
    if problems:
        return None, problems
    assert rate is not None  # else a problem was noted
    return RateRow(base, quote, rate, valid_on), []


def import_rates(
    rows: Iterable[Mapping], source: str = ExchangeRate.Source.IMPORTED, *, first_row: int = 1
) -> list[ExchangeRate]:
    """Store rates (mappings with base, quote, rate, valid_on; strings as read from a CSV, or typed values).
    Every row is checked first; if any is bad, nothing is saved and the error lists each bad row by its number
    (``first_row`` is the number of the first one: 2 for a CSV file whose row 1 is the header, as a spreadsheet
    shows it). A rate already stored for the same pair and day is replaced."""
    if source not in ExchangeRate.Source.values:
        raise ValueError(f"Unknown rate source {source!r}; one of {', '.join(ExchangeRate.Source.values)}.")
    parsed: list[RateRow] = []
    errors: list[str] = []
    seen: dict[tuple, int] = {}
    for number, row in enumerate(rows, start=first_row):
        rate_row, problems = _row_problems(row)
        if rate_row is not None:
            key = (rate_row.base, rate_row.quote, rate_row.valid_on)
            if key in seen:
                problems = [f"the same pair and day as row {seen[key]}"]
            seen.setdefault(key, number)
        if problems:
            errors.append(f"Row {number}: {'; '.join(problems)}.")
        else:
            assert rate_row is not None  # no problems: a row
            parsed.append(rate_row)
    if errors:
        raise DomainError(
            f"No rates were imported: {len(errors)} row{'s' if len(errors) != 1 else ''} need correcting.",
            code="invalid",
            fields={"rows": errors},
        )
    if not parsed:
        raise DomainError(
            "No rates were imported: there are no rows.", code="invalid", fields={"rows": ["Empty."]}
        )
    saved = []
    with transaction.atomic():
        for parsed_row in parsed:
            rate, _ = ExchangeRate.objects.update_or_create(
                base=parsed_row.base,
                quote=parsed_row.quote,
                valid_on=parsed_row.valid_on,
                defaults={"rate": parsed_row.rate, "source": source},
            )
            saved.append(rate)
    return saved


def rate_on(base: str, quote: str, day: dt.date) -> Decimal | None:
    """How many ``quote`` one ``base`` was worth on ``day``: the most recent stored rate on or before it, direct or
    the inverse of the opposite pair (the direct one when both are from the same day); None when there is none."""
    if base == quote:
        return Decimal(1)
    direct = (
        ExchangeRate.objects.filter(base=base, quote=quote, valid_on__lte=day).order_by("-valid_on").first()
    )
    inverse = (
        ExchangeRate.objects.filter(base=quote, quote=base, valid_on__lte=day).order_by("-valid_on").first()
    )
    if direct is not None and (inverse is None or direct.valid_on >= inverse.valid_on):
        return direct.rate
    if inverse is not None:
        return Decimal(1) / inverse.rate
    return None


def convert(amount: int, currency: str, to: str, rate: Decimal) -> Money:
    """``amount`` minor units of ``currency`` at ``rate`` (1 currency = rate ``to``) → Money in ``to``."""
    major = Decimal(amount).scaleb(-minor_units(currency))
    return Money(round_minor((major * rate).scaleb(minor_units(to))), to)


def base_currency() -> str:
    return Tenant.objects.values_list("base_currency", flat=True).get(pk=require_tenant_id())


def in_base_currency(amount: int, currency: str, day: dt.date, *, base: str | None = None) -> Money | None:
    """``amount`` (minor units of ``currency``) in the tenant's base currency at ``day``'s rate, or None when no
    rate is known. For reports only — never charge a converted amount."""
    base = base or base_currency()
    rate = rate_on(currency, base, day)
    return None if rate is None else convert(amount, currency, base, rate)


# --- the report ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CurrencyLine:
    currency: str
    received: int  # minor units of ``currency``
    refunded: int
    in_base: Money | None  # net, each day's net converted at that day's rate; None if a day had no rate

    @property
    def net(self) -> int:
        return self.received - self.refunded


@dataclass(frozen=True)
class PaymentsReport:
    start: dt.date
    end: dt.date
    base_currency: str
    lines: list[CurrencyLine] = field(default_factory=list)

    @property
    def missing_rates(self) -> list[str]:
        return [line.currency for line in self.lines if line.in_base is None]

    @property
    def total_in_base(self) -> Money | None:
        """The net of every currency in the base currency; None while any currency lacks a rate."""
        if self.missing_rates:
            return None
        return Money(
            sum(line.in_base.amount for line in self.lines if line.in_base is not None), self.base_currency
        )


def _daily(
    queryset: QuerySet[Payment] | QuerySet[Refund], zone: ZoneInfo, start: dt.date, end: dt.date
) -> dict[tuple[str, dt.date], int]:
    rows = (
        queryset.annotate(day=TruncDate("succeeded_at", tzinfo=zone))
        .filter(day__gte=start, day__lte=end)
        .values("currency", "day")
        .annotate(total=Sum("amount"))
    )
    return {(row["currency"], row["day"]): row["total"] for row in rows}


def payments_report(start: dt.date, end: dt.date) -> PaymentsReport:
    """Money in and out between ``start`` and ``end`` (inclusive, days in the tenant's time zone): succeeded payments
    less succeeded refunds, per currency, and in the base currency at each day's rate."""
    if end < start:
        raise DomainError(
            "The report's end is before its start.", code="invalid", fields={"end": ["Before start."]}
        )
    tenant = Tenant.objects.only("base_currency", "time_zone").get(pk=require_tenant_id())
    zone = ZoneInfo(tenant.time_zone)
    received = _daily(Payment.objects.filter(status=Payment.Status.SUCCEEDED), zone, start, end)
    refunded = _daily(Refund.objects.filter(status=Refund.Status.SUCCEEDED), zone, start, end)
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    converted: dict[str, int | None] = defaultdict(int)
    for currency, day in sorted(set(received) | set(refunded)):
        money_in, money_out = received.get((currency, day), 0), refunded.get((currency, day), 0)
        totals[currency][0] += money_in
        totals[currency][1] += money_out
        so_far = converted[currency]
        if so_far is not None:
            in_base = in_base_currency(money_in - money_out, currency, day, base=tenant.base_currency)
            converted[currency] = None if in_base is None else so_far + in_base.amount
    lines = [
        CurrencyLine(
            currency=currency,
            received=money_in,
            refunded=money_out,
            in_base=None if (net := converted[currency]) is None else Money(net, tenant.base_currency),
        )
        for currency, (money_in, money_out) in sorted(totals.items())
    ]
    return PaymentsReport(start=start, end=end, base_currency=tenant.base_currency, lines=lines)
