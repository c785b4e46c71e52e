"""Prices: the quote selector and the batch "price from" used by availability. Reads only; run inside
``tenant_context``.

Public API
----------
``quote(option, departure, units, channel, agency=None, currency=None, promo_code=None, at=None) -> Quote``
    A line-by-line price for ``units`` (unit type code → count) on one departure. Raises ``DomainError`` with a
    specific code for bad input (see ``quote``). ``Quote.as_snapshot()`` / ``Quote.from_snapshot()`` store it in a
    booking, so later price changes never alter that booking.

``price_from(option_ids, dates, *, channel, currency=None, agency=None) -> dict[tuple[UUID, date], Money]``
    For every (option id, local date) pair of the cross product that has a price: the lowest adult price (or,
    for a tour without adult units, the first unit type's price) on that date, exclusive tax added, so it is what
    one traveller pays. Pairs without a price list or rate are absent. A constant number of queries (at most 4)
    whatever the number of options and dates: call it once for a whole month of departures.

Which price list applies (both functions): active, of the pricing channel, in the currency, valid on the
departure's local date, and holding rates for the option; the agency's own list beats a general one, then the
higher ``priority`` wins (ties: the newer list). The pricing channel is the asking channel, except for an agency
whose contract on that date is a commission contract: it sells at retail prices, so the retail lists apply and the
quote shows the commission as an informational line. The currency defaults to the agency's (trade) or the tenant's
base currency (retail).

Within a list the rate of a unit type is the one of the highest-priority season covering the date with that
weekday's bit set (Monday = 1 … Sunday = 64), else its base rate (no season).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from core.currencies import MINOR_UNITS
from core.errors import DomainError
from core.money import Money, total
from partners.models import Agency, Contract
from tenants.context import require_tenant_id
from tenants.models import Tenant
from tours.models import Channel, Option, PriceList, PromoCode, Rate, Surcharge, UnitType

SNAPSHOT_VERSION = 1


# --- the quote value ------------------------------------------------------------------------------------------


class LineKind:
    UNIT = "unit"
    SURCHARGE = "surcharge"
    DISCOUNT = "discount"
    TAX = "tax"
    COMMISSION = "commission"


@dataclass(frozen=True, slots=True)
class QuoteLine:
    kind: str
    code: str
    label: str
    quantity: int
    unit_amount: Money
    amount: Money
    # Shown but not added to the total: tax already inside the prices ("of which"), the agency's commission.
    informational: bool = False
    percent: Decimal | None = None

    def as_snapshot(self) -> dict:
        return {
            "kind": self.kind,
            "code": self.code,
            "label": self.label,
            "quantity": self.quantity,
            "unit_amount": self.unit_amount.amount,
            "amount": self.amount.amount,
            "informational": self.informational,
            "percent": None if self.percent is None else str(self.percent),
        }

    @classmethod
    def from_snapshot(cls, data: dict, currency: str) -> QuoteLine:
        return cls(
            kind=data["kind"],
            code=data["code"],
            label=data["label"],
            quantity=data["quantity"],
            unit_amount=Money(data["unit_amount"], currency),
            amount=Money(data["amount"], currency),
            informational=data["informational"],
            percent=None if data["percent"] is None else Decimal(data["percent"]),
        )


@dataclass(frozen=True, slots=True)
class Totals:
    subtotal: Money
    discount: Money
    tax: Money
    total: Money
    commission: Money | None


@dataclass(frozen=True, slots=True)
class Quote:
    currency: str
    channel: str
    pricing_model: str  # "retail", "net" or "commission": which prices applied and why
    price_list_id: uuid.UUID
    option_id: uuid.UUID
    departure_id: uuid.UUID
    local_date: dt.date
    agency_id: uuid.UUID | None
    units: tuple[tuple[str, int], ...]
    lines: tuple[QuoteLine, ...]
    subtotal: Money
    discount: Money
    tax: Money
    total: Money
    commission: Money | None
    promo_code: str | None
    computed_at: dt.datetime

    @property
    def unit_counts(self) -> dict[str, int]:
        return dict(self.units)

    def as_snapshot(self) -> dict:
        """Everything as JSON-serialisable values; amounts in minor units of ``currency``."""
        return {
            "version": SNAPSHOT_VERSION,
            "currency": self.currency,
            "channel": self.channel,
            "pricing_model": self.pricing_model,
            "price_list_id": str(self.price_list_id),
            "option_id": str(self.option_id),
            "departure_id": str(self.departure_id),
            "local_date": self.local_date.isoformat(),
            "agency_id": None if self.agency_id is None else str(self.agency_id),
            "units": {code: count for code, count in self.units},
            "lines": [line.as_snapshot() for line in self.lines],
            "subtotal": self.subtotal.amount,
            "discount": self.discount.amount,
            "tax": self.tax.amount,
            "total": self.total.amount,
            "commission": None if self.commission is None else self.commission.amount,
            "promo_code": self.promo_code,
            "computed_at": self.computed_at.isoformat(),
        }

    @classmethod
    def from_snapshot(cls, data: Mapping) -> Quote:
        if data.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unknown quote snapshot version {data.get('version')!r}")
        currency = data["currency"]
        return cls(
            currency=currency,
            channel=data["channel"],
            pricing_model=data["pricing_model"],
            price_list_id=uuid.UUID(data["price_list_id"]),
            option_id=uuid.UUID(data["option_id"]),
            departure_id=uuid.UUID(data["departure_id"]),
            local_date=dt.date.fromisoformat(data["local_date"]),
            agency_id=None if data["agency_id"] is None else uuid.UUID(data["agency_id"]),
            units=tuple(data["units"].items()),
            lines=tuple(QuoteLine.from_snapshot(line, currency) for line in data["lines"]),
            subtotal=Money(data["subtotal"], currency),
            discount=Money(data["discount"], currency),
            tax=Money(data["tax"], currency),
            total=Money(data["total"], currency),
            commission=None if data["commission"] is None else Money(data["commission"], currency),
            promo_code=data["promo_code"],
            computed_at=dt.datetime.fromisoformat(data["computed_at"]),
        )


# --- totals: pure arithmetic, property-tested on its own --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DiscountTerms:
    code: str
    percent: Decimal | None = None  # percent off the subtotal …
    amount: Money | None = None  # … or a fixed amount off


@dataclass(frozen=True, slots=True)
class TaxTerms:
    name: str
    percent: Decimal
    inclusive: bool


def compose(
    currency: str,
    priced_lines: list[QuoteLine],
    discount: DiscountTerms | None = None,
    tax: TaxTerms | None = None,
    commission_percent: Decimal | None = None,
) -> tuple[tuple[QuoteLine, ...], Totals]:
    """Unit and surcharge lines → all lines with discount, tax and commission, and the totals.

    Tax is computed once on the discounted amount (one rounding per quote, not per line), so the printed tax is
    the tax of the total. The total is always the sum of the lines that are not informational."""
    subtotal = total([line.amount for line in priced_lines], currency)
    lines = list(priced_lines)

    discount_amount = Money.zero(currency)
    if discount is not None:
        if discount.percent is not None:
            discount_amount = subtotal.percent(discount.percent)
        elif discount.amount is not None:
            discount_amount = discount.amount
        # Never below zero: a discount larger than the price takes the price, no more.
        discount_amount = min(max(discount_amount, Money.zero(currency)), subtotal)
        lines.append(
            QuoteLine(
                kind=LineKind.DISCOUNT,
                code=discount.code,
                label=f"Promo {discount.code}",
                quantity=1,
                unit_amount=-discount_amount,
                amount=-discount_amount,
                percent=discount.percent,
            )
        )
    taxable = subtotal - discount_amount

    tax_amount = Money.zero(currency)
    grand_total = taxable
    if tax is not None:
        if tax.inclusive:
            tax_amount = taxable.tax_included(tax.percent)
            label = f"of which {tax.name}"
        else:
            tax_amount = taxable.tax_on(tax.percent)
            grand_total = taxable + tax_amount
            label = tax.name
        lines.append(
            QuoteLine(
                kind=LineKind.TAX,
                code=tax.name,
                label=label,
                quantity=1,
                unit_amount=tax_amount,
                amount=tax_amount,
                informational=tax.inclusive,
                percent=tax.percent,
            )
        )

    commission = None
    if commission_percent is not None:
        # On the listed retail price after any discount, not on tax added on top: no agency earns on VAT.
        commission = taxable.percent(commission_percent)
        lines.append(
            QuoteLine(
                kind=LineKind.COMMISSION,
                code="commission",
                label=f"Agency commission {commission_percent.normalize():f} %",
                quantity=1,
                unit_amount=commission,
                amount=commission,
                informational=True,
                percent=commission_percent,
            )
        )
    return tuple(lines), Totals(subtotal, discount_amount, tax_amount, grand_total, commission)


# --- promo codes (validation shared with tours.services) ------------------------------------------------------


def normalise_promo_code(code: str) -> str:
    return code.strip().upper()


def find_promo(code: str) -> PromoCode:
    promo = PromoCode.objects.filter(code=normalise_promo_code(code)).first()
    if promo is None:
        raise _promo_error(f"Promo code {code.strip()!r} does not exist.", "promo_invalid")
    return promo


def check_promo(promo: PromoCode, channel: str, currency: str, at: dt.datetime, *, uses: bool = True) -> None:
    """Raise the specific DomainError if ``promo`` cannot be used for this sale at ``at``; ``uses=False`` skips
    the usage-limit check (the redeem service enforces that in its conditional UPDATE)."""
    if not promo.is_active:
        raise _promo_error(f"Promo code {promo.code} is no longer active.", "promo_invalid")
    if promo.valid_from is not None and at < promo.valid_from:
        raise _promo_error(
            f"Promo code {promo.code} is not valid before {promo.valid_from:%Y-%m-%d}.", "promo_not_yet_valid"
        )
    if promo.valid_to is not None and at > promo.valid_to:
        raise _promo_error(f"Promo code {promo.code} expired on {promo.valid_to:%Y-%m-%d}.", "promo_expired")
    if promo.channel and promo.channel != channel:
        raise _promo_error(
            f"Promo code {promo.code} is for {promo.channel} sales only.", "promo_wrong_channel"
        )
    if promo.currency and promo.currency != currency:
        raise _promo_error(
            f"Promo code {promo.code} applies to {promo.currency} prices only.", "promo_wrong_currency"
        )
    if uses and promo.max_uses is not None and promo.times_used >= promo.max_uses:
        raise _promo_error(f"Promo code {promo.code} has been used up.", "promo_exhausted")


def _promo_error(message: str, code: str) -> DomainError:
    return DomainError(message, code=code, fields={"promo_code": [message]})


def _discount_terms(promo: PromoCode) -> DiscountTerms:
    if promo.kind == PromoCode.Kind.PERCENT:
        return DiscountTerms(code=promo.code, percent=Decimal(promo.percent))
    return DiscountTerms(code=promo.code, amount=Money(promo.amount, promo.currency))


# --- choosing the price list and the rates ----------------------------------------------------------------------


def _check_channel(channel: str) -> None:
    if channel not in Channel.values:
        message = f"Unknown channel {channel!r}; use one of {', '.join(Channel.values)}."
        raise DomainError(message, code="invalid_channel", fields={"channel": [message]})


def _check_currency(currency: str) -> None:
    if currency not in MINOR_UNITS:
        message = f"{currency!r} is not an ISO 4217 currency code."
        raise DomainError(message, code="invalid_currency", fields={"currency": [message]})


def _default_currency(channel: str, agency: Agency | None, tenant_id: uuid.UUID) -> str:
    if channel == Channel.TRADE and agency is not None:
        return agency.currency
    return Tenant.objects.values_list("base_currency", flat=True).get(pk=tenant_id)


def _contract_on(contracts: list[Contract], on_date: dt.date) -> Contract | None:
    """The contract in force on ``on_date`` (the latest-starting one if several overlap)."""
    in_force = [
        c for c in contracts if c.valid_from <= on_date and (c.valid_to is None or c.valid_to >= on_date)
    ]
    return max(in_force, key=lambda c: (c.valid_from, c.created_at), default=None)


def _agency_contracts(agency: Agency, first: dt.date, last: dt.date) -> list[Contract]:
    return list(
        Contract.objects.filter(agency=agency, valid_from__lte=last).filter(
            Q(valid_to__isnull=True) | Q(valid_to__gte=first)
        )
    )


def _pricing_model(channel: str, contract: Contract | None) -> str:
    if channel == Channel.RETAIL:
        return "retail"
    if contract is not None and contract.model == Contract.Model.COMMISSION:
        return "commission"
    return "net"


def _lists_channel(pricing_model: str) -> str:
    return Channel.TRADE if pricing_model == "net" else Channel.RETAIL


def _candidate_lists(channels: set[str], currency: str, agency: Agency | None, first: dt.date, last: dt.date):
    audience = Q(agency__isnull=True) | Q(agency=agency) if agency is not None else Q(agency__isnull=True)
    return (
        PriceList.objects.filter(channel__in=channels, currency=currency, is_active=True)
        .filter(audience)
        .filter(Q(valid_from__isnull=True) | Q(valid_from__lte=last))
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=first))
        .select_related("tax_rate")
    )


def _list_applies(price_list: PriceList, channel: str, on_date: dt.date) -> bool:
    return (
        price_list.channel == channel
        and (price_list.valid_from is None or price_list.valid_from <= on_date)
        and (price_list.valid_to is None or price_list.valid_to >= on_date)
    )


def _list_rank(price_list: PriceList) -> tuple:
    # uuid7 ids grow with time: on equal priority the newer list wins, deterministically.
    return (price_list.agency_id is not None, price_list.priority, price_list.pk)


def _effective_rates(rates: Iterable[Rate], on_date: dt.date) -> dict[uuid.UUID, Rate]:
    """Unit type id → the rate in force on ``on_date``: the best covering season's, else the base rate."""
    weekday_bit = 1 << on_date.weekday()
    base: dict[uuid.UUID, Rate] = {}
    seasonal: dict[uuid.UUID, Rate] = {}
    for rate in rates:
        season = rate.season
        if season is None:
            base[rate.unit_type_id] = rate
        elif season.start_date <= on_date <= season.end_date and season.weekdays & weekday_bit:
            best = seasonal.get(rate.unit_type_id)
            if best is None or _season_rank(season) > _season_rank(best.season):
                seasonal[rate.unit_type_id] = rate
    return base | seasonal


def _season_rank(season) -> tuple:
    # Equal priorities: the season that started later is the more specific one.
    return (season.priority, season.start_date, season.pk)


# --- quote ----------------------------------------------------------------------------------------------------


def _validated_counts(
    units: Mapping[str, int], unit_types: dict[str, UnitType]
) -> list[tuple[UnitType, int]]:
    if not isinstance(units, Mapping):
        raise DomainError(
            "Units must map unit type codes to counts.",
            code="invalid_units",
            fields={"units": ["Expected an object."]},
        )
    errors: dict[str, list[str]] = {}
    counts: list[tuple[UnitType, int]] = []
    for code, count in units.items():
        unit_type = unit_types.get(code)
        if unit_type is None:
            known = ", ".join(sorted(unit_types)) or "none"
            errors.setdefault("units", []).append(f"Unknown unit type {code!r} (this tour has: {known}).")
            continue
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            errors.setdefault("units", []).append(f"The count of {code} must be a whole number, 0 or more.")
            continue
        if count == 0:
            continue
        if count < unit_type.min_per_booking or (
            unit_type.max_per_booking is not None and count > unit_type.max_per_booking
        ):
            limit = f"{unit_type.min_per_booking}–{unit_type.max_per_booking or 'any'}"
            errors.setdefault("units", []).append(
                f"{unit_type.name}: {count} is outside {limit} per booking."
            )
            continue
        counts.append((unit_type, count))
    if errors:
        unknown = any("Unknown unit type" in message for message in errors["units"])
        code = "unknown_unit" if unknown else "invalid_count"
        raise DomainError(" ".join(errors["units"]), code=code, fields=errors)
    if not counts:
        message = "Ask for at least one unit (e.g. one adult)."
        raise DomainError(message, code="no_units", fields={"units": [message]})
    return sorted(counts, key=lambda pair: (pair[0].position, pair[0].name))


def quote(
    option: Option,
    departure,
    units: Mapping[str, int],
    channel: str,
    agency: Agency | None = None,
    currency: str | None = None,
    promo_code: str | None = None,
    at: dt.datetime | None = None,
    promo_redeemed: bool = False,
) -> Quote:
    """The price of ``units`` on ``departure`` for ``channel`` (and ``agency`` on the trade channel).
    ``promo_redeemed``: the sale already holds one use of the code (re-pricing a changed booking), so its usage
    limit does not count against it again.

    Error codes: invalid_channel, invalid_currency, departure_mismatch, agency_cannot_book, unknown_unit,
    invalid_count, no_units, no_price_list, no_rate, promo_invalid, promo_not_yet_valid, promo_expired,
    promo_exhausted, promo_wrong_channel, promo_wrong_currency."""
    require_tenant_id()  # fail closed outside a tenant context, before any query
    at = at or timezone.now()
    _check_channel(channel)
    if departure.option_id != option.pk:
        message = "This departure belongs to another option."
        raise DomainError(message, code="departure_mismatch", fields={"departure": [message]})
    if agency is not None and not agency.can_book:
        message = f"{agency} is {agency.get_status_display().lower()} and cannot book."
        raise DomainError(message, code="agency_cannot_book", fields={"agency": [message]})
    if currency is not None:
        _check_currency(currency)
    counts = _validated_counts(units, {u.code: u for u in UnitType.objects.filter(tour_id=option.tour_id)})

    on_date = departure.local_date
    contract = None
    if channel == Channel.TRADE and agency is not None:
        contract = _contract_on(_agency_contracts(agency, on_date, on_date), on_date)
    pricing_model = _pricing_model(channel, contract)
    currency = currency or _default_currency(channel, agency, departure.tenant_id)
    list_channel = _lists_channel(pricing_model)

    has_rates = Rate.objects.filter(price_list=OuterRef("pk"), option=option)
    candidates = _candidate_lists({list_channel}, currency, agency, on_date, on_date).filter(
        Exists(has_rates)
    )
    price_list = max(candidates, key=_list_rank, default=None)
    if price_list is None:
        message = f"No {list_channel} price list in {currency} for {option.name} on {on_date:%Y-%m-%d}."
        raise DomainError(message, code="no_price_list", fields={"currency": [message]})

    rates = _effective_rates(
        Rate.objects.filter(price_list=price_list, option=option).select_related("season"), on_date
    )
    missing = [unit_type for unit_type, _ in counts if unit_type.pk not in rates]
    if missing:
        names = ", ".join(f"{u.name} ({u.code})" for u in missing)
        message = f"{price_list.name} has no rate for {names} on {on_date:%Y-%m-%d}."
        raise DomainError(message, code="no_rate", fields={"units": [message]})

    priced: list[QuoteLine] = []
    for unit_type, count in counts:
        unit_price = Money(rates[unit_type.pk].amount, currency)
        priced.append(
            QuoteLine(
                kind=LineKind.UNIT,
                code=unit_type.code,
                label=unit_type.name,
                quantity=count,
                unit_amount=unit_price,
                amount=unit_price * count,
            )
        )
    surcharges = Surcharge.objects.filter(price_list=price_list).filter(
        Q(option__isnull=True) | Q(option=option)
    )
    for surcharge in surcharges.order_by("name", "pk"):
        amount = Money(surcharge.amount, currency)
        priced.append(
            QuoteLine(
                kind=LineKind.SURCHARGE,
                code=str(surcharge.pk),
                label=surcharge.name,
                quantity=1,
                unit_amount=amount,
                amount=amount,
            )
        )

    discount = None
    promo = None
    if promo_code is not None and promo_code.strip():
        promo = find_promo(promo_code)
        check_promo(promo, channel, currency, at, uses=not promo_redeemed)
        discount = _discount_terms(promo)
    tax = None
    if price_list.tax_rate is not None:
        tax_rate = price_list.tax_rate
        tax = TaxTerms(name=tax_rate.name, percent=Decimal(tax_rate.percent), inclusive=tax_rate.inclusive)
    commission_percent = Decimal(contract.commission_percent) if pricing_model == "commission" else None

    lines, totals = compose(currency, priced, discount, tax, commission_percent)
    return Quote(
        currency=currency,
        channel=channel,
        pricing_model=pricing_model,
        price_list_id=price_list.pk,
        option_id=option.pk,
        departure_id=departure.pk,
        local_date=on_date,
        agency_id=None if agency is None else agency.pk,
        units=tuple((unit_type.code, count) for unit_type, count in counts),
        lines=lines,
        subtotal=totals.subtotal,
        discount=totals.discount,
        tax=totals.tax,
        total=totals.total,
        commission=totals.commission,
        promo_code=None if promo is None else promo.code,
        computed_at=at,
    )


# --- price from -----------------------------------------------------------------------------------------------


def _reference_price(rates: dict[uuid.UUID, Rate]) -> int | None:
    """The lowest adult rate; a tour without adult units shows its first unit type's rate."""
    adult = [rate.amount for rate in rates.values() if rate.unit_type.kind == UnitType.Kind.ADULT]
    if adult:
        return min(adult)
    first = min(rates.values(), key=lambda rate: (rate.unit_type.position, rate.unit_type.name), default=None)
    return None if first is None else first.amount


def price_from(
    option_ids: Iterable[uuid.UUID],
    dates: Iterable[dt.date],
    *,
    channel: str,
    currency: str | None = None,
    agency: Agency | None = None,
) -> dict[tuple[uuid.UUID, dt.date], Money]:
    """(option id, local date) → what one adult pays on that date (see the module docstring)."""
    tenant_id = require_tenant_id()
    _check_channel(channel)
    if currency is not None:
        _check_currency(currency)
    option_ids = set(option_ids)
    dates = sorted(set(dates))
    if not option_ids or not dates:
        return {}
    first, last = dates[0], dates[-1]
    currency = currency or _default_currency(channel, agency, tenant_id)

    contracts = (
        _agency_contracts(agency, first, last) if channel == Channel.TRADE and agency is not None else []
    )
    list_channel_on = {d: _lists_channel(_pricing_model(channel, _contract_on(contracts, d))) for d in dates}
    lists = list(_candidate_lists(set(list_channel_on.values()), currency, agency, first, last))
    if not lists:
        return {}
    rates_by_list_option: dict[tuple[uuid.UUID, uuid.UUID], list[Rate]] = defaultdict(list)
    rates = Rate.objects.filter(
        price_list__in=[pl.pk for pl in lists], option_id__in=option_ids
    ).select_related("season", "unit_type")
    for rate in rates:
        rates_by_list_option[(rate.price_list_id, rate.option_id)].append(rate)

    prices: dict[tuple[uuid.UUID, dt.date], Money] = {}
    for on_date in dates:
        applicable = [pl for pl in lists if _list_applies(pl, list_channel_on[on_date], on_date)]
        for option_id in option_ids:
            with_rates = [pl for pl in applicable if (pl.pk, option_id) in rates_by_list_option]
            price_list = max(with_rates, key=_list_rank, default=None)
            if price_list is None:
                continue
            amount = _reference_price(
                _effective_rates(rates_by_list_option[(price_list.pk, option_id)], on_date)
            )
            if amount is None:
                continue
            price = Money(amount, currency)
            if price_list.tax_rate is not None and not price_list.tax_rate.inclusive:
                price += price.tax_on(price_list.tax_rate.percent)
            prices[(option_id, on_date)] = price
    return prices
