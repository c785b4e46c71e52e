"""Small validators shared by the domain apps."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

from core.currencies import MINOR_UNITS

_COUNTRY = re.compile(r"^[A-Z]{2}$")


def validate_currency(value: str) -> None:
    if value not in MINOR_UNITS:
        raise ValidationError(f"{value!r} is not an ISO 4217 currency code.", code="invalid_currency")


def validate_country(value: str) -> None:
    if not _COUNTRY.match(value or ""):
        raise ValidationError(
            "Use the two-letter ISO 3166 country code, e.g. MA, NO, GB.", code="invalid_country"
        )
