"""A new booking: from holds already placed (the API, the trade side), or seats held and booked in one step (the
retail booking form)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from bookings import money
from bookings.models import Booking, BookingItem, Consent, StatusChange, new_reference
from bookings.services.transitions import Status, actor_label, move_to
from bookings.services.travellers import TravellerDetails, add_travellers
from core.errors import ConflictError, DomainError
from core.locking import lock_rows
from events.outbox import publish
from inventory import services as inventory
from inventory.models import Departure, Hold
from partners.locks import lock_agency
from partners.models import Agency
from tours import pricing
from tours import services as promotions
from tours.models import Channel, PromoCode

if TYPE_CHECKING:
    from accounts.models import User


@dataclass(frozen=True)
class Lead:
    name: str
    email: str
    phone: str = ""


def _validate_lead(lead: Lead) -> None:
    if not lead.name.strip():
        raise DomainError.for_field("The lead customer's name is required.", "lead_name")
    try:
        validate_email(lead.email.strip())
    except ValidationError:
        raise DomainError.for_field(
            "Enter a valid email address for the lead customer.", "lead_email"
        ) from None


def pricing_channel(channel: str) -> str:
    return Channel.TRADE if channel == Booking.Channel.TRADE else Channel.RETAIL


def _buyers_key(key: str, agency: Agency | None, actor: User | None) -> str:
    """A client's idempotency key, within its buyer: two agencies (or two staff members) that happen to use the
    same order number as their key never see each other's booking. Stored hashed (fixed length)."""
    buyer = f"agency:{agency.pk}" if agency is not None else f"user:{getattr(actor, 'pk', None) or '-'}"
    return hashlib.sha256(f"{buyer}\n{key}".encode()).hexdigest()


def _replayed_booking(existing: Booking, holds: Sequence[Hold]) -> Booking:
    """The booking a retried request made; the same key for other holds is a client bug, refused."""
    made_from = set(existing.items.exclude(hold=None).values_list("hold_id", flat=True))
    if made_from != {hold.pk for hold in holds}:
        raise ConflictError(
            "This Idempotency-Key was already used for a booking of other holds.",
            code="idempotency_key_reused",
            fields={"holds": ["Not the holds of the booking this key made."]},
        )
    return existing


def _promo_per_item(promo_code: str | None, items: int) -> list[str | None]:
    """Which items a promo code prices: a percentage applies to each item, a fixed amount off once per booking
    (to the first item), as it counts one use."""
    if not promo_code or items == 1:
        return [promo_code] * items
    if pricing.find_promo(promo_code).kind == PromoCode.Kind.FIXED:
        return [promo_code] + [None] * (items - 1)
    return [promo_code] * items


@transaction.atomic
def create_booking(
    *,
    holds: Sequence[Hold],
    lead: Lead,
    channel: str,
    language: str,
    travellers: Sequence[TravellerDetails] = (),
    agency: Agency | None = None,
    agent_reference: str = "",
    on_account: bool = False,
    promo_code: str | None = None,
    idempotency_key: str = "",
    consent: dict | None = None,
    actor: User | None = None,
) -> Booking:
    """A booking on hold from one or more active holds (their seats stay held until it is confirmed or lapses).
    The price is quoted now and snapshotted into each item. The same ``idempotency_key`` returns the same booking."""
    if idempotency_key:
        idempotency_key = _buyers_key(idempotency_key, agency, actor)
        existing = Booking.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return _replayed_booking(existing, holds)
    if language not in dict(settings.LANGUAGES):
        raise DomainError.for_field(
            f"Unknown language {language!r}; one of {', '.join(dict(settings.LANGUAGES))}.", "language"
        )
    if channel not in Booking.Channel.values:
        raise DomainError.for_field(f"Unknown channel {channel!r}.", "channel")
    if not holds:
        raise DomainError.for_field("A booking needs at least one hold.", "holds")
    _validate_lead(lead)
    if on_account and agency is None:
        raise DomainError.for_field("Only an agency books on account.", "on_account")
    if agency is not None and not agency.can_book:
        raise DomainError.for_field(
            f"{agency} cannot book at the moment ({agency.get_status_display()}).", "agency"
        )
    now = timezone.now()
    if on_account and agency is not None:
        lock_agency(agency)  # its credit decides its confirmation: the agency before the holds (core.locking)
    locked = lock_rows(Hold.objects.filter(pk__in=[hold.pk for hold in holds]))
    if len(locked) != len({hold.pk for hold in holds}):
        raise DomainError.for_field("One of the holds does not exist.", "holds")
    for hold in locked:
        if hold.status != Hold.Status.ACTIVE or hold.expires_at <= now:
            raise ConflictError(
                "One of the holds has ended or expired; place a new one.",
                code="hold_not_active",
                fields={"holds": [str(hold.pk)]},
            )
        if hold.agency_id != (agency.pk if agency else None):
            raise DomainError.for_field("A hold belongs to another buyer.", "holds")
        if BookingItem.objects.filter(hold=hold).exists():
            raise ConflictError(
                "A hold is already part of a booking.", code="hold_in_use", fields={"holds": [str(hold.pk)]}
            )
    codes = _promo_per_item(promo_code, len(locked))
    quotes = [
        pricing.quote(
            hold.departure.option,
            hold.departure,
            hold.units,
            pricing_channel(channel),
            agency=agency,
            promo_code=code,
        )
        for hold, code in zip(locked, codes, strict=True)
    ]
    currencies = {quote.currency for quote in quotes}
    if len(currencies) != 1:
        raise DomainError.for_field("All items of a booking are priced in one currency.", "holds")
    booking = Booking(
        reference=new_reference(),
        channel=channel,
        language=language,
        lead_name=lead.name.strip(),
        lead_email=lead.email.strip(),
        lead_phone=lead.phone.strip(),
        agency=agency,
        agent_reference=agent_reference,
        on_account=on_account,
        currency=currencies.pop(),
        total=sum(quote.total.amount for quote in quotes),
        idempotency_key=idempotency_key,
        created_by=actor if getattr(actor, "pk", None) else None,
        expires_at=min(hold.expires_at for hold in locked),
    )
    for _attempt in range(5):
        try:
            with transaction.atomic():
                booking.save()
            break
        except IntegrityError as error:
            if "booking_unique_reference" in str(error):  # a random reference already taken: draw another
                booking.reference = new_reference()
                booking._state.adding = True
                continue
            if idempotency_key:  # the same key won a race with us
                raise ConflictError(
                    "This booking is being created already.", code="duplicate_request"
                ) from None
            raise
    items = []
    for hold, quote in zip(locked, quotes, strict=True):
        items.append(
            BookingItem.objects.create(
                booking=booking,
                departure=hold.departure,
                option=hold.departure.option,
                hold=hold,
                units=hold.units,
                seats=hold.seats,
                quote=quote.as_snapshot(),
                total=quote.total.amount,
            )
        )
    if promo_code:  # the quote checked the code; using it counts against its limit, under concurrency
        promotions.redeem_promo(promo_code, str(booking.pk), pricing_channel(channel), booking.currency)
    add_travellers(booking, items, travellers)
    if consent:
        Consent.objects.create(
            booking=booking,
            terms_version=consent["terms_version"],
            marketing_opt_in=bool(consent.get("marketing_opt_in")),
            accepted_at=now,
            ip_address=consent.get("ip_address") or "",
        )
    StatusChange.objects.create(
        booking=booking, from_status="", to_status=Status.DRAFT, actor_label=actor_label(actor)
    )
    money.keeper().plan(booking, items)
    publish("booking.initiated", booking, {"reference": booking.reference, "total": booking.total})
    publish("inventory.reserved", booking, {"holds": [str(hold.pk) for hold in locked]})
    return move_to(booking, Status.ON_HOLD, actor=actor)


@transaction.atomic
def book_departure(
    departure: Departure,
    units: dict[str, int],
    *,
    lead: Lead,
    language: str,
    idempotency_key: str,
    travellers: Sequence[TravellerDetails] = (),
    consent: dict | None = None,
) -> Booking:
    """A traveller books seats of one departure in one step (the retail booking form): the seats are held and the
    booking made in one transaction, so a refusal of either leaves nothing behind. The same ``idempotency_key``
    returns the same booking."""
    hold = inventory.place_hold(departure, units, Channel.RETAIL, f"retail-booking:{idempotency_key}")
    return create_booking(
        holds=[hold],
        lead=lead,
        channel=Booking.Channel.RETAIL,
        language=language,
        travellers=travellers,
        idempotency_key=idempotency_key,
        consent=consent,
    )
