"""Promo code redemption and release: idempotent per reference, the usage limit held by one conditional UPDATE
(proved with real threads racing for the last uses), a specific error for every unusable code, nothing changed on
refusal."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.errors import DomainError
from tenants.context import tenant_context
from tests.factories import make_tenant
from tests.races import run_together
from tours.models import Channel, PromoCode, PromoRedemption
from tours.services import redeem_promo, release_promo


def make_promo(code="WELCOME", **fields) -> PromoCode:
    defaults = {"kind": PromoCode.Kind.PERCENT, "percent": Decimal(10)}
    defaults.update(fields)
    if defaults["kind"] == PromoCode.Kind.FIXED:
        defaults.pop("percent", None)
    return PromoCode.objects.create(code=code, **defaults)


@pytest.fixture
def tenant(db):
    tenant = make_tenant()
    with tenant_context(tenant):
        yield tenant


def state(promo: PromoCode) -> tuple[int, list[tuple[str, bool]]]:
    promo.refresh_from_db()
    rows = PromoRedemption.objects.filter(promo=promo).order_by("reference")
    return promo.times_used, [(r.reference, r.released_at is None) for r in rows]


def test_redeem_takes_one_use_with_one_conditional_update(tenant):
    promo = make_promo(max_uses=2)
    with CaptureQueriesContext(connection) as queries:
        redemption = redeem_promo("  welcome ", "hold-1", Channel.RETAIL, "EUR")
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "tours_promocode"')]
    assert len(updates) == 1
    assert all(column in updates[0] for column in ('"max_uses"', '"is_active"', '"valid_from"', '"valid_to"'))
    assert redemption.promo_id == promo.pk and redemption.reference == "hold-1"
    assert state(promo) == (1, [("hold-1", True)])


def test_the_same_reference_gets_the_same_redemption_without_another_use(tenant):
    promo = make_promo()
    first = redeem_promo("WELCOME", "hold-1", Channel.RETAIL, "EUR")
    again = redeem_promo("welcome", "hold-1", Channel.RETAIL, "EUR")
    assert again.pk == first.pk
    assert state(promo) == (1, [("hold-1", True)])


def test_the_same_reference_is_idempotent_even_when_the_code_is_used_up(tenant):
    promo = make_promo(max_uses=1)
    first = redeem_promo("WELCOME", "hold-1", Channel.RETAIL, "EUR")
    assert redeem_promo("WELCOME", "hold-1", Channel.RETAIL, "EUR").pk == first.pk
    with pytest.raises(DomainError) as caught:
        redeem_promo("WELCOME", "hold-2", Channel.RETAIL, "EUR")
    assert caught.value.code == "promo_exhausted" and "promo_code" in caught.value.fields
    assert state(promo) == (1, [("hold-1", True)])


def test_release_gives_the_use_back_once_and_the_reference_can_redeem_again(tenant):
    promo = make_promo(max_uses=1)
    redemption = redeem_promo("WELCOME", "hold-1", Channel.RETAIL, "EUR")

    released = release_promo(redemption)
    assert released.released_at is not None
    assert state(promo) == (0, [("hold-1", False)])
    release_promo(redemption)  # a second release changes nothing
    assert state(promo) == (0, [("hold-1", False)])

    other = redeem_promo("WELCOME", "hold-2", Channel.RETAIL, "EUR")  # the use is free again
    assert state(promo) == (1, [("hold-1", False), ("hold-2", True)])
    release_promo(other)
    again = redeem_promo("WELCOME", "hold-1", Channel.RETAIL, "EUR")
    assert again.pk == redemption.pk and again.released_at is None
    assert state(promo) == (1, [("hold-1", True), ("hold-2", False)])


@pytest.mark.parametrize(
    ("code", "promo_fields", "channel", "currency"),
    [
        ("promo_invalid", None, Channel.RETAIL, "EUR"),
        ("promo_invalid", {"is_active": False}, Channel.RETAIL, "EUR"),
        ("promo_expired", {"valid_to": timezone.now() - dt.timedelta(days=1)}, Channel.RETAIL, "EUR"),
        ("promo_not_yet_valid", {"valid_from": timezone.now() + dt.timedelta(days=1)}, Channel.RETAIL, "EUR"),
        ("promo_exhausted", {"max_uses": 2, "times_used": 2}, Channel.RETAIL, "EUR"),
        ("promo_wrong_channel", {"channel": Channel.RETAIL}, Channel.TRADE, "EUR"),
        (
            "promo_wrong_currency",
            {"kind": PromoCode.Kind.FIXED, "amount": 500, "currency": "EUR"},
            Channel.RETAIL,
            "JPY",
        ),
    ],
)
def test_unusable_codes_are_refused_specifically_and_change_nothing(
    tenant, code, promo_fields, channel, currency
):
    promo = make_promo("DEAL", **promo_fields) if promo_fields is not None else make_promo("OTHER")
    before = state(promo)
    with pytest.raises(DomainError) as caught:
        redeem_promo("deal", "hold-1", channel, currency)
    assert caught.value.code == code, caught.value.message
    assert caught.value.fields["promo_code"]
    assert state(promo) == before


def test_redeem_at_a_given_time_respects_the_validity_window(tenant):
    start = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
    end = dt.datetime(2026, 7, 31, 23, 59, tzinfo=dt.UTC)
    promo = make_promo(valid_from=start, valid_to=end)
    redeem_promo("WELCOME", "in", Channel.RETAIL, "EUR", at=end)
    for at, code in (
        (start - dt.timedelta(seconds=1), "promo_not_yet_valid"),
        (end + dt.timedelta(seconds=1), "promo_expired"),
    ):
        with pytest.raises(DomainError) as caught:
            redeem_promo("WELCOME", f"out-{code}", Channel.RETAIL, "EUR", at=at)
        assert caught.value.code == code
    assert state(promo) == (1, [("in", True)])


@pytest.mark.parametrize("reference", ["", "   ", "x" * 65])
def test_a_bad_reference_is_refused(tenant, reference):
    promo = make_promo()
    with pytest.raises(DomainError) as caught:
        redeem_promo("WELCOME", reference, Channel.RETAIL, "EUR")
    assert caught.value.code == "invalid_reference" and caught.value.fields["reference"]
    assert state(promo) == (0, [])


# --- races ----------------------------------------------------------------------------------------------------


def redeem_concurrently(tenant, references: list[str]) -> list[object]:
    """Each reference redeemed in its own thread with its own connection, all released at once."""

    def redeem(index: int) -> list[object]:
        with tenant_context(tenant):
            return [redeem_promo("race", references[index], Channel.RETAIL, "EUR")]

    return run_together(redeem, threads=len(references))


@pytest.mark.django_db(transaction=True)
def test_forty_threads_race_for_five_uses():
    tenant = make_tenant()
    with tenant_context(tenant):
        promo = make_promo("RACE", max_uses=5)

    outcomes = redeem_concurrently(tenant, [f"hold-{n}" for n in range(40)])

    won = [o for o in outcomes if isinstance(o, PromoRedemption)]
    refused = [o for o in outcomes if isinstance(o, DomainError)]
    assert len(won) == 5, outcomes
    assert len(refused) == 35 and {e.code for e in refused} == {"promo_exhausted"}, outcomes
    with tenant_context(tenant):
        promo.refresh_from_db()
        assert promo.times_used == 5
        assert PromoRedemption.objects.filter(promo=promo).count() == 5


@pytest.mark.django_db(transaction=True)
def test_one_reference_racing_itself_uses_the_code_once():
    tenant = make_tenant()
    with tenant_context(tenant):
        promo = make_promo("RACE", max_uses=3)

    outcomes = redeem_concurrently(tenant, ["booking-7"] * 12)

    assert all(isinstance(o, PromoRedemption) for o in outcomes), outcomes
    assert len({o.pk for o in outcomes}) == 1
    with tenant_context(tenant):
        promo.refresh_from_db()
        assert promo.times_used == 1
        assert PromoRedemption.objects.filter(promo=promo).count() == 1
