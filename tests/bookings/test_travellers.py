"""Traveller details: changed and added within the units booked, validated, until the cut-off, stored encrypted."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from bookings import services
from bookings.models import Booking, Traveller
from bookings.services import TravellerDetails
from core.errors import ConflictError, DomainError
from events.models import OutboxEvent
from inventory.models import Departure
from tenants.context import tenant_context
from tenants.models import AuditEvent
from tests.bookings.world import LEAD, World
from tests.factories import make_member

pytestmark = pytest.mark.django_db


def _family(world) -> Booking:
    """Two adults named, one child not yet: on hold."""
    hold = world.hold("family", {"adult": 2, "child": 1})
    return services.create_booking(
        holds=[hold],
        lead=LEAD,
        channel="retail",
        language="en",
        travellers=[
            TravellerDetails(unit_code="adult", first_name="Ana", last_name="Lima"),
            TravellerDetails(unit_code="adult", first_name="Rui", last_name="Lima"),
        ],
    )


def _snapshot(booking) -> list[tuple]:
    return [
        (t.unit_code, t.first_name, t.last_name, t.date_of_birth, t.nationality, t.medical_notes)
        for t in Traveller.objects.filter(booking=booking).order_by("id")
    ]


def test_details_are_changed_and_travellers_added_and_the_change_is_announced_without_values():
    world = World()
    member = make_member(world.tenant, "sales")
    with tenant_context(world.tenant):
        booking = _family(world)
        ana = sorted(booking.travellers.all(), key=lambda t: t.first_name)[0]

        services.update_travellers(
            booking,
            {str(ana.pk): {"date_of_birth": "1990-05-01", "nationality": "pt", "medical_notes": " Asthma "}},
            add=[
                TravellerDetails(
                    unit_code="child", first_name="Leo", last_name="Lima", date_of_birth=dt.date(2018, 3, 2)
                )
            ],
            actor=member,
        )

        ana.refresh_from_db()
        leo = booking.travellers.get(unit_code="child")
        event = OutboxEvent.objects.get(aggregate_id=str(booking.pk), name="booking.modified")
        audit = AuditEvent.objects.get(target_id=str(booking.pk))
    assert (ana.date_of_birth, ana.nationality, ana.medical_notes) == ("1990-05-01", "PT", "Asthma")
    assert (leo.first_name, leo.date_of_birth, leo.item_id is not None) == ("Leo", "2018-03-02", True)
    assert event.payload == {
        "reference": booking.reference,
        "change": "travellers",
        "travellers": [str(ana.pk), str(leo.pk)],
        "by": str(member),
    }
    assert audit.changes == {
        "travellers": [
            None,
            {"changed": {str(ana.pk): ["date_of_birth", "medical_notes", "nationality"]}, "added": 1},
        ]
    }
    assert "Asthma" not in str(audit.changes) and "1990" not in str(audit.changes)


def test_more_travellers_than_units_booked_are_refused():
    world = World()
    with tenant_context(world.tenant):
        booking = _family(world)
        before = _snapshot(booking)
        with pytest.raises(DomainError) as refused:
            services.update_travellers(
                booking, add=[TravellerDetails(unit_code="adult", first_name="Eva", last_name="Lima")]
            )
        assert "2 of those" in refused.value.message and "travellers" in refused.value.fields
        with pytest.raises(DomainError):
            services.update_travellers(
                booking, add=[TravellerDetails(unit_code="infant", first_name="Bia", last_name="Lima")]
            )
        assert _snapshot(booking) == before


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"shoe_size": "42"}, "unknown field"),
        ({"date_of_birth": "01/05/1990"}, "YYYY-MM-DD"),
        ({"date_of_birth": "2990-01-01"}, "in the past"),
        ({"date_of_birth": 19900501}, "YYYY-MM-DD"),
        ({"date_of_birth": dt.datetime(1990, 5, 1, tzinfo=dt.UTC)}, "YYYY-MM-DD"),
        ({"nationality": "Portugal"}, "two-letter"),
        ({"nationality": "P1"}, "two-letter"),
        ({"nationality": "ÉS"}, "two-letter"),
        ({"first_name": "  "}, "first and a last name"),
        ({"passport_number": 12345}, "is text"),
        ({"dietary_notes": "x" * 501}, "at most 500"),
        ({"answers": ["yes"]}, "question code"),
    ],
)
def test_bad_values_are_field_errors_and_change_nothing(values, message):
    world = World()
    with tenant_context(world.tenant):
        booking = _family(world)
        traveller = booking.travellers.first()
        before = _snapshot(booking)

        with pytest.raises(DomainError) as refused:
            services.update_travellers(booking, {str(traveller.pk): values})

        assert refused.value.status == 400 and message in refused.value.message
        assert list(refused.value.fields) == ["travellers"]
        assert _snapshot(booking) == before
        assert not OutboxEvent.objects.filter(aggregate_id=str(booking.pk), name="booking.modified").exists()


def test_someone_elses_traveller_or_nothing_to_change_is_refused():
    world = World()
    with tenant_context(world.tenant):
        mine, other = _family(world), world.confirmed_booking("other")
        stranger = other.travellers.first()
        with pytest.raises(DomainError, match="not on this booking"):
            services.update_travellers(mine, {str(stranger.pk): {"first_name": "Eve"}})
        with pytest.raises(DomainError, match="not on this booking"):
            services.update_travellers(mine, {"not-an-id": {"first_name": "Eve"}})
        with pytest.raises(DomainError, match="Nothing to change"):
            services.update_travellers(mine, {}, add=[])
        assert "Eve" not in [t.first_name for t in other.travellers.all()]


def test_after_the_cut_off_travellers_cannot_change_details_but_staff_can():
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("a")
        traveller = booking.travellers.first()
        # The tenant's cut-off is 48 hours before the start.
        Departure.objects.filter(pk=world.departure.pk).update(
            starts_at=timezone.now() + dt.timedelta(hours=47)
        )

        with pytest.raises(ConflictError) as refused:
            services.update_travellers(booking, {str(traveller.pk): {"dietary_notes": "vegan"}})
        assert refused.value.code == "after_cutoff"

        services.update_travellers(
            booking, {str(traveller.pk): {"dietary_notes": "vegan"}}, enforce_cutoff=False
        )
        traveller.refresh_from_db()
        assert traveller.dietary_notes == "vegan"


def test_a_cancelled_bookings_travellers_cannot_change():
    world = World()
    with tenant_context(world.tenant):
        booking = services.cancel_booking(world.confirmed_booking("a"))
        traveller = booking.travellers.first()
        with pytest.raises(ConflictError) as refused:
            services.update_travellers(
                booking, {str(traveller.pk): {"first_name": "Eve"}}, enforce_cutoff=False
            )
        assert refused.value.fields == {"status": ["cancelled"]}


def test_personal_details_are_stored_as_ciphertext():
    world = World()
    with tenant_context(world.tenant):
        booking = _family(world)
        traveller = booking.travellers.first()
        services.update_travellers(
            booking,
            {
                str(traveller.pk): {
                    "first_name": "Zeferino",
                    "passport_number": "PX9981234",
                    "medical_notes": "Peanut allergy",
                    "date_of_birth": "1987-11-23",
                    "answers": {"pickup": "Hotel Avenida"},
                }
            },
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT first_name, passport_number, medical_notes, date_of_birth, answers "
                f"FROM {Traveller._meta.db_table} WHERE id = %s",
                [traveller.pk],
            )
            raw = " ".join(str(value) for value in cursor.fetchone())
        traveller.refresh_from_db()
    for plaintext in ("Zeferino", "PX9981234", "Peanut", "1987-11-23", "Avenida"):
        assert plaintext not in raw
    assert (traveller.first_name, traveller.passport_number) == ("Zeferino", "PX9981234")
