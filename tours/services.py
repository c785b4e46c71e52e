"""Pricing writes: promo code redemption and release. Run inside ``tenant_context``.

A promo code's usage limit holds under any concurrency because a use is taken by ONE conditional UPDATE
(``times_used = times_used + 1 WHERE … times_used < max_uses``): PostgreSQL re-checks the condition on the
latest row version after waiting for a concurrent writer, so no read-then-write window exists.
"""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from core.errors import DomainError
from tenants.context import require_tenant_id
from tours.models import PromoCode, PromoRedemption
from tours.pricing import check_promo, find_promo

_REFERENCE_MAX = PromoRedemption._meta.get_field("reference").max_length


class _LostRace(Exception):
    """Another transaction redeemed the same (promo, reference) first: undo ours and return theirs."""


class _Refused(Exception):
    """The conditional UPDATE matched no row."""


def _take_one_use(promo: PromoCode, at: dt.datetime) -> bool:
    """The one statement that enforces the limit; False when the code is inactive, out of dates or used up."""
    updated = (
        PromoCode.objects.filter(pk=promo.pk, is_active=True)
        .filter(Q(max_uses__isnull=True) | Q(times_used__lt=F("max_uses")))
        .filter(Q(valid_from__isnull=True) | Q(valid_from__lte=at))
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=at))
        .update(times_used=F("times_used") + 1)
    )
    return updated == 1


def _check_reference(reference: str) -> None:
    if (
        not isinstance(reference, str)
        or not reference.strip()
        or (_REFERENCE_MAX is not None and len(reference) > _REFERENCE_MAX)
    ):
        message = f"A reference of 1 to {_REFERENCE_MAX} characters is required."
        raise DomainError(message, code="invalid_reference", fields={"reference": [message]})


def redeem_promo(
    code: str, reference: str, channel: str, currency: str, at: dt.datetime | None = None
) -> PromoRedemption:
    """Use ``code`` once for ``reference`` (a hold or booking id). Idempotent: the same reference gets the same
    redemption back without using the code again; a released redemption is taken again (one more use).

    Error codes: invalid_reference, promo_invalid, promo_not_yet_valid, promo_expired, promo_exhausted,
    promo_wrong_channel, promo_wrong_currency."""
    require_tenant_id()
    _check_reference(reference)
    at = at or timezone.now()
    with transaction.atomic():
        promo = find_promo(code)
        # Channel and currency do not change with use: checked up front; the rest is the UPDATE's condition.
        check_promo(promo, channel, currency, at, uses=False)
        existing = PromoRedemption.objects.filter(promo=promo, reference=reference).first()
        if existing is not None and existing.released_at is None:
            return existing
        try:
            with transaction.atomic():
                if not _take_one_use(promo, at):
                    raise _Refused
                if existing is None:
                    return PromoRedemption.objects.create(promo=promo, reference=reference)
                reactivated = PromoRedemption.objects.filter(
                    pk=existing.pk, released_at__isnull=False
                ).update(released_at=None)
                if not reactivated:
                    raise _LostRace
                existing.released_at = None
                return existing
        except (IntegrityError, _LostRace):
            return PromoRedemption.objects.get(promo=promo, reference=reference)
        except _Refused:
            # The same reference may have been redeemed meanwhile (it is then idempotent, not refused).
            winner = PromoRedemption.objects.filter(
                promo=promo, reference=reference, released_at__isnull=True
            ).first()
            if winner is not None:
                return winner
            promo.refresh_from_db()
            check_promo(promo, channel, currency, at)
            raise DomainError(
                f"Promo code {promo.code} has been used up.",
                code="promo_exhausted",
                fields={"promo_code": [f"Promo code {promo.code} has been used up."]},
            ) from None


def release_promo(redemption: PromoRedemption) -> PromoRedemption:
    """Give the use back (the hold lapsed, the booking was cancelled). Only the first release counts."""
    require_tenant_id()
    with transaction.atomic():
        released = PromoRedemption.objects.filter(pk=redemption.pk, released_at__isnull=True).update(
            released_at=timezone.now()
        )
        if released:
            PromoCode.objects.filter(pk=redemption.promo_id, times_used__gt=0).update(
                times_used=F("times_used") - 1
            )
        redemption.refresh_from_db()
    return redemption
