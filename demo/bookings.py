"""Two confirmed bookings per demo tenant, to look at: one a partner agency booked on account, one a traveller
paid by bank transfer."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

import inventory.services as inventory_services
from accounts.models import User
from bookings import services as booking_services
from bookings.models import Booking
from inventory.models import Departure
from partners.models import PartnerUser
from payments.services.offline import record_offline_payment
from tenants.models import Tenant


def seed_bookings(tenant: Tenant, partner: User) -> Booking | None:
    """Two confirmed bookings to look at (once per tenant): one the partner agency booked on account, one a
    traveller paid by bank transfer. Their emails and PDFs are made by the worker as soon as it starts. Returns the
    traveller's booking (its manage link is printed)."""

    if Booking.objects.exists():
        return Booking.objects.filter(channel=Booking.Channel.RETAIL).order_by("created_at").first()
    agency = PartnerUser.objects.get(user=partner).agency
    soon = timezone.now() + dt.timedelta(days=10)
    departures = list(
        Departure.objects.filter(starts_at__gte=soon, status=Departure.Status.OPEN)
        .select_related("option__tour")
        .order_by("starts_at")[:40]
    )
    if not departures:
        return None  # a catalogue without departures ahead (edited by hand): nothing to book
    trade_departure = departures[0]
    retail_departure = next((d for d in departures if d.tour_id != trade_departure.tour_id), departures[-1])
    language = tenant.default_language

    def traveller(first: str, last: str) -> booking_services.TravellerDetails:
        return booking_services.TravellerDetails(unit_code="adult", first_name=first, last_name=last)

    trade = booking_services.create_booking(
        holds=[
            inventory_services.place_hold(trade_departure, {"adult": 2}, "trade", "demo-trade", agency=agency)
        ],
        lead=booking_services.Lead(name="Marta Keller", email="marta.keller@example.com"),
        channel=Booking.Channel.TRADE,
        language=language,
        agency=agency,
        agent_reference="DEMO-4711",
        on_account=True,
        travellers=[traveller("Marta", "Keller"), traveller("Jonas", "Keller")],
    )
    booking_services.confirm_booking(trade, reason="Demo booking")
    retail = booking_services.create_booking(
        holds=[inventory_services.place_hold(retail_departure, {"adult": 2}, "retail", "demo-retail")],
        lead=booking_services.Lead(name="Ana Lima", email="traveller@example.com", phone="+351 912 345 678"),
        channel=Booking.Channel.RETAIL,
        language=language,
        travellers=[traveller("Ana", "Lima"), traveller("Rui", "Lima")],
        consent={"terms_version": "2026-01", "marketing_opt_in": False, "ip_address": "127.0.0.1"},
    )
    record_offline_payment(
        retail, amount=retail.total, method="bank_transfer", reference="DEMO-TRANSFER-1", actor=None
    )
    return booking_services.confirm_booking(Booking.objects.get(pk=retail.pk), reason="Paid by bank transfer")
