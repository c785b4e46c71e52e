"""A tenant with one tour, prices, a departure, cancellation tiers and an agency on account: what most booking
tests need."""

from __future__ import annotations

from bookings import services
from bookings.models import Booking
from bookings.services import Lead, TravellerDetails
from inventory.models import Departure, Hold
from inventory.services import place_hold
from tenants.context import tenant_context
from tests.catalogue import (
    make_agency,
    make_contract,
    make_departure,
    make_option,
    make_price_list,
    make_tour,
    make_unit_types,
)
from tests.factories import make_tenant
from tours.models import CancellationTier, Channel

LEAD = Lead(name="Ana Lima", email="ana@example.com", phone="+351 912 345 678")


class World:
    def __init__(self, credit_limit: int = 500_000, **tenant_fields):
        self.tenant = make_tenant(**tenant_fields)
        with tenant_context(self.tenant):
            self.tour = make_tour()
            self.option = make_option(self.tour)
            units = make_unit_types(self.tour)
            make_price_list(self.option, units, {"adult": 10000, "child": 5000, "infant": 0})
            make_price_list(
                self.option, units, {"adult": 8000, "child": 4000, "infant": 0}, channel=Channel.TRADE
            )
            self.departure = make_departure(self.option, capacity=20)
            CancellationTier.objects.create(tour=self.tour, days_before=14, refund_percent=100)
            CancellationTier.objects.create(tour=self.tour, days_before=2, refund_percent=50)
            self.agency = make_agency()
            make_contract(self.agency, credit_limit=credit_limit)

    def hold(self, key: str, units=None, agency=None) -> Hold:
        channel = "trade" if agency else "retail"
        return place_hold(self.fresh_departure(), units or {"adult": 2}, channel, key, agency=agency)

    def fresh_departure(self) -> Departure:
        return Departure.objects.get(pk=self.departure.pk)

    def trade_booking(self, key: str, adults: int) -> Booking:
        hold = self.hold(key, {"adult": adults}, agency=self.agency)
        return services.create_booking(
            holds=[hold], lead=LEAD, channel="trade", language="en", agency=self.agency, on_account=True
        )

    def confirmed_booking(self, key: str, adults: int = 2) -> Booking:
        """A confirmed on-account trade booking with every adult named (call inside the tenant's context)."""
        hold = self.hold(key, {"adult": adults}, agency=self.agency)
        travellers = [
            TravellerDetails(unit_code="adult", first_name=f"Traveller{n}", last_name=key.title())
            for n in range(1, adults + 1)
        ]
        booking = services.create_booking(
            holds=[hold],
            lead=LEAD,
            channel="trade",
            language="en",
            agency=self.agency,
            on_account=True,
            travellers=travellers,
        )
        return services.confirm_booking(booking)
