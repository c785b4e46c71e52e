"""The booking data model: personal data encrypted at rest, findable by email, references short and unique."""

from __future__ import annotations

import re

import pytest
from django.db import IntegrityError, connection, transaction

from bookings.models import REFERENCE_ALPHABET, Booking, Traveller, new_reference
from core.pii.fields import blind_lookup
from tenants.context import tenant_context
from tests.factories import make_tenant

pytestmark = pytest.mark.django_db


def _booking(**fields) -> Booking:
    values = {
        "channel": "retail",
        "language": "en",
        "lead_name": "Ana Lima",
        "lead_email": "Ana.Lima@Example.com",
        "lead_phone": "+351 912 345 678",
        "currency": "EUR",
        "total": 12500,
    }
    values.update(fields)
    return Booking.objects.create(**values)


def _raw(table: str, column: str, pk) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])
        return bytes(cursor.fetchone()[0])


def test_lead_and_traveller_details_are_ciphertext_in_the_table():
    tenant = make_tenant()
    with tenant_context(tenant):
        booking = _booking()
        traveller = Traveller.objects.create(
            booking=booking, unit_code="adult", first_name="Ana", last_name="Lima", passport_number="P1234567"
        )
        for column, plain in (
            ("lead_name", b"Ana Lima"),
            ("lead_email", b"Ana.Lima"),
            ("lead_phone", b"912"),
        ):
            assert plain not in _raw("bookings_booking", column, booking.pk)
        assert b"P1234567" not in _raw("bookings_traveller", "passport_number", traveller.pk)
        fresh = Traveller.objects.get(pk=traveller.pk)
        assert (fresh.first_name, fresh.passport_number) == ("Ana", "P1234567")


def test_a_booking_is_found_by_the_leads_email_in_any_case():
    tenant = make_tenant()
    with tenant_context(tenant):
        booking = _booking()
        _booking(lead_email="someone@else.example")
        found = Booking.objects.filter(
            **blind_lookup(Booking, "lead_email_index", "  ana.lima@example.COM ", tenant_id=tenant.pk)
        )
        assert list(found) == [booking]


def test_references_are_short_unambiguous_and_unique_per_tenant():
    assert re.fullmatch(f"[{REFERENCE_ALPHABET}]{{8}}", new_reference())
    assert not set("01ILO") & set(REFERENCE_ALPHABET)
    first, second = make_tenant(), make_tenant()
    with tenant_context(first):
        booking = _booking()
        with pytest.raises(IntegrityError), transaction.atomic():
            _booking(reference=booking.reference)
    with tenant_context(second):
        assert _booking(reference=booking.reference).reference == booking.reference  # another tenant's space


def test_an_on_account_booking_needs_an_agency():
    tenant = make_tenant()
    with tenant_context(tenant), pytest.raises(IntegrityError), transaction.atomic():
        _booking(on_account=True)
