"""Links a traveller follows without an account: the manage-booking page. The token is signed (Django's
SECRET_KEY, a salt of its own) and names tenant and booking, so it cannot be forged, altered or used on another
tenant's site."""

from __future__ import annotations

from django.core import signing
from django.urls import reverse

from bookings.models import Booking
from tenants.context import require_tenant_id
from tenants.routing import public_base_url

SALT = "tourops.bookings.manage"


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT)


def manage_token(booking: Booking) -> str:
    """The same token every time for a booking (no timestamp): every email and page links the same address."""
    return _signer().sign_object({"t": str(booking.tenant_id), "b": str(booking.pk)}, compress=True)


def booking_for_manage_token(token: str) -> Booking | None:
    """The booking a token names, in the current tenant; None for a forged, altered or foreign token."""
    try:
        data = _signer().unsign_object(token)
    except (signing.BadSignature, ValueError):
        return None
    if not isinstance(data, dict) or data.get("t") != str(require_tenant_id()):
        return None
    return Booking.objects.filter(pk=data.get("b")).first()


def manage_url(booking: Booking) -> str:
    """Absolute link to the booking's manage page on the tenant's primary host (for emails and PDFs)."""
    return public_base_url(booking.tenant) + reverse(
        "retail:manage_booking", kwargs={"token": manage_token(booking)}
    )
