"""Money: an integer number of minor units and an ISO 4217 code. No floats anywhere.

Arithmetic between different currencies is refused (a silent conversion is a bug). Fractions of a minor unit
arise only from percentages and tax; they are rounded half-up (away from zero) to the currency's minor unit, in
one place, here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from babel.numbers import format_currency
from django.utils import translation

from core.currencies import minor_units


class CurrencyMismatch(ValueError):
    pass


def round_minor(value: Decimal) -> int:
    """A Decimal amount of minor units → int, half away from zero."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True, slots=True, order=False)
class Money:
    amount: int  # minor units: cents, yen, fils
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError(f"Money amount must be an int of minor units, not {type(self.amount).__name__}")
        minor_units(self.currency)  # raises ValueError for an unknown code

    # --- construction ------------------------------------------------------------------------------------------

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def from_decimal(cls, value: Decimal | str | int, currency: str) -> Money:
        """From major units ("12.50" EUR → 1250). Refuses more decimals than the currency has."""
        value = Decimal(str(value))
        exponent = minor_units(currency)
        scaled = value.scaleb(exponent)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more than {exponent} decimals, the minor unit of {currency}")
        return cls(int(scaled), currency)

    # --- reading -----------------------------------------------------------------------------------------------

    @property
    def exponent(self) -> int:
        return minor_units(self.currency)

    def to_decimal(self) -> Decimal:
        return Decimal(self.amount).scaleb(-self.exponent)

    def __str__(self) -> str:
        return f"{self.to_decimal():,.{self.exponent}f} {self.currency}"

    def format(self, language: str) -> str:
        """For people, in their language's conventions: "€1,234.50" in English, "1 234,50 €" in French."""
        with localcontext() as context:
            context.prec = max(context.prec, len(str(abs(self.amount))) + 4)  # however many digits it has
            return format_currency(self.to_decimal(), self.currency, locale=language.replace("-", "_"))

    def as_dict(self) -> dict:
        """For JSON (API, snapshots): minor units stay integers; the decimal string is for people."""
        return {"amount": self.amount, "currency": self.currency, "display": str(self)}

    @classmethod
    def from_dict(cls, data: dict) -> Money:
        """The inverse of ``as_dict`` (``display`` is ignored: the minor units are the truth)."""
        return cls(data["amount"], data["currency"])

    # --- arithmetic --------------------------------------------------------------------------------------------

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __mul__(self, factor: int) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, int):
            raise TypeError("Money can be multiplied by an int (a count); use percent() for rates")
        return Money(self.amount * factor, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def __bool__(self) -> bool:
        return self.amount != 0

    def percent(self, rate: Decimal | str | int) -> Money:
        """``rate`` percent of this amount, rounded to the minor unit (12.5 → 12.5 %)."""
        return Money(round_minor(Decimal(self.amount) * Decimal(str(rate)) / 100), self.currency)

    def tax_on(self, rate: Decimal | str | int) -> Money:
        """The tax to add on top of a net amount at ``rate`` percent (exclusive tax)."""
        return self.percent(rate)

    def tax_included(self, rate: Decimal | str | int) -> Money:
        """The tax inside a gross amount at ``rate`` percent: gross − gross / (1 + rate)."""
        rate = Decimal(str(rate))
        net = round_minor(Decimal(self.amount) * 100 / (100 + rate))
        return Money(self.amount - net, self.currency)

    def allocate(self, weights: list[int]) -> list[Money]:
        """Split into parts proportional to ``weights`` that add up exactly; leftover minor units go to the
        first parts (so 100.00 in 3 → 33.34, 33.33, 33.33)."""
        if not weights or any(w < 0 for w in weights) or sum(weights) == 0:
            raise ValueError("weights must be non-negative with a positive sum")
        total = sum(weights)
        parts = [self.amount * w // total for w in weights]
        remainder = self.amount - sum(parts)
        step = 1 if remainder >= 0 else -1
        for i in range(abs(remainder)):
            parts[i % len(parts)] += step
        return [Money(part, self.currency) for part in parts]


def total(amounts: list[Money], currency: str) -> Money:
    result = Money.zero(currency)
    for amount in amounts:
        result += amount
    return result


def format_money(amount: int, currency: str) -> str:
    """``amount`` minor units of ``currency`` written out for the reader, in the active language ("€1,250.00")."""
    return Money(int(amount), currency).format(translation.get_language() or "en")
