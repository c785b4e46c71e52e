"""Check-in: the voucher's QR code holds a check-in token naming the booking; a guide's scan marks its travellers
checked in, once.

The token is the booking reference and a keyed hash (HMAC of SECRET_KEY with a salt of its own) over the tenant and
the booking: ``ABCD2345-K7QX9MPT2Z``. Short enough to be typed from a printed voucher when a QR code will not
scan, unforgeable, the same every time it is made (so a voucher printed again shows the same code and the old
paper stays valid), and bound to the tenant: looked up only in the guide's own tenant, and the hash covers the
tenant id. The token alone shows nothing: every use of it needs a signed-in member with ``bookings.check_in``."""

from __future__ import annotations

import datetime as dt
import hmac
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from bookings.locks import lock_bookings
from bookings.models import REFERENCE_ALPHABET, REFERENCE_LENGTH, Booking, Traveller
from core.errors import ConflictError, DomainError
from tenants.context import require_tenant_id
from tenants.routing import public_base_url

SALT = "tourops.bookings.checkin"
MAC_LENGTH = 10  # 31^10 ≈ 8e14 (49 bits): guessing needs a staff login and ~10^14 tries per booking
TOKEN_LENGTH = REFERENCE_LENGTH + 1 + MAC_LENGTH


def _mac(tenant_id: uuid.UUID, booking_id: uuid.UUID, secret: str | None = None) -> str:
    digest = salted_hmac(SALT, f"{tenant_id}:{booking_id}", secret=secret, algorithm="sha256").digest()
    number = int.from_bytes(digest[:16], "big")
    characters = []
    for _ in range(MAC_LENGTH):
        number, index = divmod(number, len(REFERENCE_ALPHABET))
        characters.append(REFERENCE_ALPHABET[index])
    return "".join(characters)


def check_in_token(booking: Booking) -> str:
    return f"{booking.reference}-{_mac(booking.tenant_id, booking.pk)}"


def check_in_path(token: str) -> str:
    return reverse("check_in", kwargs={"token": token}, urlconf="tourops.urls")


def check_in_url(booking: Booking) -> str:
    """The absolute address of the guides' check-in page for this booking: what the voucher's QR code holds."""
    return public_base_url(booking.tenant) + check_in_path(check_in_token(booking))


def _invalid_token() -> DomainError:
    return DomainError(
        "This code is not a valid voucher.",
        code="invalid_token",
        fields={"token": ["Not a valid voucher code."]},
    )


def _split(token: object) -> tuple[str, str]:
    """(reference, mac) of a token as scanned or typed: case, spaces and dashes do not matter."""
    if not isinstance(token, str):
        raise _invalid_token()
    compact = "".join(token.split()).replace("-", "").upper()
    if len(compact) != REFERENCE_LENGTH + MAC_LENGTH or not set(compact) <= set(REFERENCE_ALPHABET):
        raise _invalid_token()
    return compact[:REFERENCE_LENGTH], compact[REFERENCE_LENGTH:]


def _booking_of(token: str, *, lock: bool) -> Booking:
    reference, mac = _split(token)
    tenant_id = require_tenant_id()
    bookings = Booking.objects.filter(reference=reference)
    booking = next(iter(lock_bookings(bookings)), None) if lock else bookings.first()
    # The hash is compared even when no booking has the reference, so timing does not tell which exist.
    booking_id = booking.pk if booking is not None else uuid.UUID(int=0)
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    valid = any(hmac.compare_digest(mac, _mac(tenant_id, booking_id, secret)) for secret in secrets)
    if booking is None or not valid:
        raise _invalid_token()
    return booking


@dataclass(frozen=True)
class CheckInDeparture:
    tour: str
    option: str
    starts_at: dt.datetime  # in the tour's time zone
    time_zone: str
    meeting_point: str


@dataclass(frozen=True)
class CheckInSheet:
    """What a guide sees after scanning, before checking anyone in."""

    booking: Booking
    token: str
    departures: list[CheckInDeparture]
    travellers: list[Traveller]
    time_zone: str  # the first departure's tour's: check-in times are shown in it

    @property
    def can_check_in(self) -> bool:
        return self.booking.status == Booking.Status.CONFIRMED and any(
            traveller.checked_in_at is None for traveller in self.travellers
        )


def check_in_sheet(token: str) -> CheckInSheet:
    """The booking behind a token, its departures and travellers with their check-in status; changes nothing.
    Raises the same ``invalid_token`` error as ``check_in`` for a bad or foreign token."""
    booking = _booking_of(token, lock=False)
    departures = [
        CheckInDeparture(
            tour=item.option.tour.title,
            option=item.option.name,
            starts_at=item.departure.starts_at.astimezone(ZoneInfo(item.option.tour.time_zone)),
            time_zone=item.option.tour.time_zone,
            meeting_point=item.option.tour.meeting_point,
        )
        for item in booking.items.select_related("departure", "option__tour").order_by("departure__starts_at")
    ]
    return CheckInSheet(
        booking=booking,
        token=check_in_token(booking),
        departures=departures,
        travellers=list(booking.travellers.order_by("id")),
        time_zone=departures[0].time_zone if departures else "UTC",
    )


def _traveller_ids(traveller_ids: Iterable[object]) -> list[uuid.UUID]:
    try:
        return [uuid.UUID(str(value)) for value in traveller_ids]
    except ValueError:
        raise DomainError(
            "A traveller is not on this booking.", code="invalid", fields={"travellers": ["Unknown."]}
        ) from None


@transaction.atomic
def check_in(token: str, traveller_ids: list[str] | None = None) -> list[Traveller]:
    """Mark the booking's travellers (everyone not yet in, or the ones named) checked in; returns those just
    checked in. A traveller is checked in once: naming one who is already in is refused (naming them), and so is
    checking "everyone" in when everyone already is."""
    booking = _booking_of(token, lock=True)
    if booking.status != Booking.Status.CONFIRMED:
        raise ConflictError(
            f"Booking {booking.reference} is {booking.get_status_display().lower()}, not confirmed.",
            code="not_confirmed",
            fields={"status": [booking.status]},
        )
    named = booking.travellers.order_by("id")
    if traveller_ids is not None:
        wanted = set(_traveller_ids(traveller_ids))
        if not wanted:
            raise DomainError(
                "Choose who to check in.", code="invalid", fields={"travellers": ["Choose at least one."]}
            )
        named = named.filter(pk__in=wanted)
        if named.count() != len(wanted):
            raise DomainError(
                "A traveller is not on this booking.", code="invalid", fields={"travellers": ["Unknown."]}
            )
    travellers = list(named)
    if not travellers:
        raise DomainError("The booking has no named travellers to check in.", code="no_travellers")
    already = [traveller for traveller in travellers if traveller.checked_in_at is not None]
    if traveller_ids is None:
        # "Everyone": those who arrived earlier were checked in one by one; the rest are checked in now.
        if len(already) == len(travellers):
            raise ConflictError("Everyone on this booking is already checked in.", code="already_checked_in")
        travellers = [traveller for traveller in travellers if traveller.checked_in_at is None]
    elif already:
        names = ", ".join(f"{t.first_name} {t.last_name}" for t in already)
        raise ConflictError(f"Already checked in: {names}.", code="already_checked_in")
    now = timezone.now()
    Traveller.objects.filter(pk__in=[t.pk for t in travellers], checked_in_at__isnull=True).update(
        checked_in_at=now
    )
    for traveller in travellers:
        traveller.checked_in_at = now
    return travellers
