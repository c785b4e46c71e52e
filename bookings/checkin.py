"""Check-in: the voucher's QR code holds a signed token naming the booking; a guide's scan marks its travellers
checked in, once. The signature (Django's SECRET_KEY, a salt of its own) makes tokens unforgeable; the tenant in
the token must be the one the guide works for."""

from __future__ import annotations

from django.core import signing
from django.db import transaction
from django.utils import timezone

from bookings.models import Booking, Traveller
from core.errors import ConflictError, DomainError
from tenants.context import require_tenant_id

SALT = "tourops.bookings.checkin"


def check_in_token(booking: Booking) -> str:
    return signing.dumps({"t": str(booking.tenant_id), "b": str(booking.pk)}, salt=SALT, compress=True)


def _booking_of(token: str) -> Booking:
    try:
        data = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise DomainError("This code is not a valid voucher.", code="invalid_token") from None
    if data.get("t") != str(require_tenant_id()):
        raise DomainError("This voucher is for another company's tour.", code="invalid_token")
    booking = Booking.objects.select_for_update().filter(pk=data.get("b")).first()
    if booking is None:
        raise DomainError("This code is not a valid voucher.", code="invalid_token")
    return booking


@transaction.atomic
def check_in(token: str, traveller_ids: list[str] | None = None) -> list[Traveller]:
    """Mark the booking's travellers (all, or the ones named) checked in; returns those just checked in. A
    traveller is checked in once: scanning again is refused, naming who is already in."""
    booking = _booking_of(token)
    if booking.status != Booking.Status.CONFIRMED:
        raise ConflictError(
            f"Booking {booking.reference} is {booking.get_status_display().lower()}, not confirmed.",
            code="not_confirmed",
            fields={"status": [booking.status]},
        )
    travellers = booking.travellers.order_by("id")
    if traveller_ids is not None:
        travellers = travellers.filter(pk__in=traveller_ids)
        if travellers.count() != len(set(traveller_ids)):
            raise DomainError(
                "A traveller is not on this booking.", code="invalid", fields={"travellers": ["Unknown."]}
            )
    travellers = list(travellers)
    already = [traveller for traveller in travellers if traveller.checked_in_at is not None]
    if already:
        names = ", ".join(f"{t.first_name} {t.last_name}" for t in already)
        raise ConflictError(f"Already checked in: {names}.", code="already_checked_in")
    if not travellers:
        raise DomainError("The booking has no named travellers to check in.", code="no_travellers")
    now = timezone.now()
    Traveller.objects.filter(pk__in=[t.pk for t in travellers], checked_in_at__isnull=True).update(
        checked_in_at=now
    )
    for traveller in travellers:
        traveller.checked_in_at = now
    return travellers
