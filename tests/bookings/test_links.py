"""Manage-booking links and "find my booking": signed, bound to the tenant, never guessable from a reference."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings

from bookings.links import booking_for_manage_token, manage_token, manage_url
from bookings.models import Document
from bookings.selectors import find_booking
from tenants.context import tenant_context
from tests.bookings.world import World


@pytest.mark.django_db
def test_a_manage_token_opens_its_booking_and_nothing_else():
    world, other = World(), World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("link")
        token = manage_token(booking)
        assert booking_for_manage_token(token).pk == booking.pk
        assert booking_for_manage_token(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert booking_for_manage_token("") is None
    with tenant_context(other.tenant):
        assert booking_for_manage_token(token) is None  # a valid token of another tenant


@pytest.mark.django_db
def test_the_manage_url_points_at_the_tenants_primary_host():
    world = World()
    host = world.tenant.domains.get(is_primary=True).host
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("url")
        with override_settings(TLS_ENABLED=True, PUBLIC_PORT=""):
            assert manage_url(booking).startswith(f"https://{host}/booking/")
        with override_settings(TLS_ENABLED=False, PUBLIC_PORT="8000"):
            url = manage_url(booking)
    assert url.startswith(f"http://{host}:8000/booking/")
    with tenant_context(world.tenant):
        assert booking_for_manage_token(url.rstrip("/").rsplit("/", 1)[1]).pk == booking.pk


@pytest.mark.django_db
def test_find_my_booking_needs_the_reference_and_the_lead_email():
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("find")
        assert find_booking(booking.reference.lower(), " ANA@example.com ").pk == booking.pk
        assert find_booking(booking.reference, "someone@example.com") is None
        assert find_booking("ZZZZZZZZ", "ana@example.com") is None
        assert find_booking("", "") is None


@pytest.mark.django_db
def test_document_bytes_are_stored_encrypted_and_read_back_as_bytes():
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("doc")
        pdf = b"%PDF-1.7 voucher for Traveller1 Doc"
        document = Document.objects.create(
            booking=booking, kind="voucher", filename="v.pdf", content=pdf, sha256="0" * 64, size=len(pdf)
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT content FROM bookings_document WHERE id = %s", [document.pk])
            stored = bytes(cursor.fetchone()[0])
        assert b"%PDF" not in stored and b"Traveller1" not in stored
        assert Document.objects.get(pk=document.pk).content == pdf
