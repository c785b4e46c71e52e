"""seed_demo: the demo catalogue is there after one run, and a second run changes nothing."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Max, Min

from accounts.models import User
from bookings.links import manage_token
from bookings.models import Booking
from demo.data import DEMO_PASSWORD
from inventory.models import Allotment, Departure
from partners.models import Contract, PartnerUser
from tenants.checks import tenant_models
from tenants.context import tenant_context
from tenants.models import Tenant
from tours.models import PriceList, PromoCode, Rate, Tour, TourTranslation

pytestmark = pytest.mark.django_db


def _snapshot() -> dict[str, object]:
    """Row counts of every tenant table per demo tenant, plus the latest change on the seat and price rows."""
    state: dict[str, object] = {"users": User.objects.count()}
    for tenant in Tenant.objects.order_by("slug"):
        with tenant_context(tenant):
            for model in tenant_models():
                state[f"{tenant.slug}:{model._meta.label}"] = model.objects.count()
            state[f"{tenant.slug}:seats"] = list(
                Departure.objects.order_by("id").values_list(
                    "id", "capacity", "allotted", "held", "sold", "status"
                )
            )
            state[f"{tenant.slug}:rates"] = list(Rate.objects.order_by("id").values_list("id", "amount"))
    return state


def test_seed_demo_builds_the_catalogue_and_is_idempotent():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    first = _snapshot()
    second_out = StringIO()
    call_command("seed_demo", stdout=second_out)

    assert _snapshot() == first
    assert second_out.getvalue() == out.getvalue()
    assert "partner@sahara.demo" in out.getvalue() and "partner@nordlys.demo" in out.getvalue()

    tours, currencies = 0, set()
    for tenant in Tenant.objects.filter(slug__in=["sahara", "nordlys"]):
        with tenant_context(tenant):
            tours += Tour.objects.filter(status=Tour.Status.PUBLISHED).count()
            currencies |= set(PriceList.objects.values_list("currency", flat=True))
            assert {"retail", "trade"} <= set(PriceList.objects.values_list("channel", flat=True))
            assert PromoCode.objects.exists()
            languages = set(TourTranslation.objects.values_list("language", flat=True))
            assert languages == {"sahara": {"en"}, "nordlys": {"nb"}}[tenant.slug]
            for tour in Tour.objects.all():
                assert tour.options.exists() and tour.unit_types.count() == 3
                assert (
                    tour.itinerary.exists() and tour.cancellation_tiers.exists() and tour.questions.exists()
                )
            span = Departure.objects.aggregate(first=Min("local_date"), last=Max("local_date"))
            assert span["last"] - span["first"] >= dt.timedelta(days=170)
            booker = PartnerUser.objects.select_related("user", "agency").get()
            assert booker.user.email == f"partner@{tenant.slug}.demo"
            assert Contract.objects.get(agency=booker.agency).credit_limit > 0
            allotment = Allotment.objects.select_related("departure").first()
            assert allotment is not None and allotment.departure.allotted >= allotment.seats
            bookings = {b.channel: b for b in Booking.objects.all()}
            assert set(bookings) == {"trade", "retail"}
            assert {b.status for b in bookings.values()} == {"confirmed"}
            assert bookings["retail"].paid == bookings["retail"].total > 0
            assert f"/booking/{manage_token(bookings['retail'])}/" in out.getvalue()
    assert tours >= 10
    assert {"MAD", "NOK", "EUR", "JPY"} <= currencies
    assert User.objects.get(email="partner@nordlys.demo").check_password(DEMO_PASSWORD)
