"""Every booking transition is one function here: it validates, runs in one transaction in the tenant's context,
moves seats through ``inventory.services``, writes the status history and publishes the outbox event.

    draft → on_hold → awaiting_payment → confirmed → completed
    plus cancelled, expired, refunded, no_show (see TRANSITIONS)

Payments arrive with issue 7: until then a booking is confirmed only when nothing is due now — a zero total, an
on-account trade booking within the agency's credit, or a total already paid (recorded offline by staff).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Max, Min, Sum, Value, When
from django.utils import timezone

from bookings import selectors
from bookings.locks import lock_booking
from bookings.models import Booking, BookingItem, Consent, StatusChange, Traveller, new_reference
from core.errors import ConflictError, DomainError
from core.ids import uuid7
from core.locking import lock_rows
from core.money import format_money
from events.outbox import publish
from inventory import services as inventory
from inventory.locks import lock_seats
from inventory.models import Hold
from partners.locks import lock_agency
from partners.models import Agency
from partners.selectors import contract_on
from payments import refunds, schedules
from payments.services import amount_due_now
from tenants import audit
from tenants.models import Tenant
from tours import pricing
from tours import services as promotions
from tours.models import Channel, PromoCode, PromoRedemption

S = Booking.Status
TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.ON_HOLD, S.CANCELLED, S.EXPIRED}),
    S.ON_HOLD: frozenset({S.AWAITING_PAYMENT, S.CONFIRMED, S.CANCELLED, S.EXPIRED}),
    S.AWAITING_PAYMENT: frozenset({S.CONFIRMED, S.CANCELLED, S.EXPIRED}),
    S.CONFIRMED: frozenset({S.COMPLETED, S.CANCELLED, S.NO_SHOW, S.REFUNDED}),
    S.CANCELLED: frozenset({S.REFUNDED}),
    S.COMPLETED: frozenset(),
    S.EXPIRED: frozenset(),
    S.REFUNDED: frozenset(),
    S.NO_SHOW: frozenset(),
}
# Bookings whose unpaid on-account amount uses the agency's credit.
CREDIT_USING = (S.CONFIRMED, S.COMPLETED, S.NO_SHOW)


class IllegalTransition(ConflictError):
    code = "illegal_transition"

    def __init__(self, booking: Booking, to: str):
        super().__init__(
            f"Booking {booking.reference} is {booking.get_status_display().lower()}; it cannot become "
            f"{S(to).label.lower()}.",
            fields={"status": [booking.status]},
        )


@dataclass(frozen=True)
class Lead:
    name: str
    email: str
    phone: str = ""


@dataclass(frozen=True)
class TravellerDetails:
    unit_code: str
    first_name: str
    last_name: str
    date_of_birth: dt.date | None = None
    nationality: str = ""
    passport_number: str = ""
    dietary_notes: str = ""
    medical_notes: str = ""
    answers: dict = field(default_factory=dict)


def _actor_label(actor) -> str:
    return str(actor) if actor is not None else "system"


def _locked_for(booking: Booking, to: str) -> Booking:
    """The booking locked, refused up front (nothing changed yet) if it may not become ``to``."""
    booking = lock_booking(booking)
    _check_transition(booking, to)
    return booking


def _check_transition(booking: Booking, to: str) -> None:
    if to not in TRANSITIONS[booking.status]:
        raise IllegalTransition(booking, to)


def _lock_seats(booking: Booking) -> None:
    """Lock the booking's holds, then their departures, before moving any seat (two multi-item bookings on the
    same departures, confirmed or cancelled at once, would otherwise each lock one departure and wait)."""
    lock_seats(
        Hold.objects.filter(booking_item__booking=booking),
        booking.items.values_list("departure_id", flat=True),
    )


def _move(booking: Booking, to: str, *, actor=None, reason: str = "", payload: dict | None = None) -> Booking:
    """The one place a status changes: the transition is checked, the history written, the event published."""
    _check_transition(booking, to)
    StatusChange.objects.create(
        booking=booking,
        from_status=booking.status,
        to_status=to,
        reason=reason,
        actor_label=_actor_label(actor),
    )
    booking.status = to
    booking.save(
        update_fields=[
            "status",
            "confirmed_at",
            "cancelled_at",
            "expires_at",
            "cancellation_charge",
            "updated_at",
        ]
    )
    publish(f"booking.{to}", booking, {"reference": booking.reference, "status": to, **(payload or {})})
    return booking


def _validate_lead(lead: Lead) -> None:
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    if not lead.name.strip():
        raise DomainError.for_field("The lead customer's name is required.", "lead_name")
    try:
        validate_email(lead.email.strip())
    except ValidationError:
        raise DomainError.for_field(
            "Enter a valid email address for the lead customer.", "lead_email"
        ) from None


def _pricing_channel(channel: str) -> str:
    return Channel.TRADE if channel == Booking.Channel.TRADE else Channel.RETAIL


def _buyers_key(key: str, agency: Agency | None, actor) -> str:
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
    actor=None,
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
    if on_account:
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
            _pricing_channel(channel),
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
        promotions.redeem_promo(promo_code, str(booking.pk), _pricing_channel(channel), booking.currency)
    _add_travellers(booking, items, travellers)
    if consent:
        Consent.objects.create(
            booking=booking,
            terms_version=consent["terms_version"],
            marketing_opt_in=bool(consent.get("marketing_opt_in")),
            accepted_at=now,
            ip_address=consent.get("ip_address") or "",
        )
    StatusChange.objects.create(
        booking=booking, from_status="", to_status=S.DRAFT, actor_label=_actor_label(actor)
    )
    schedules.create_schedule(booking, items)
    publish("booking.initiated", booking, {"reference": booking.reference, "total": booking.total})
    publish("inventory.reserved", booking, {"holds": [str(hold.pk) for hold in locked]})
    return _move(booking, S.ON_HOLD, actor=actor)


TRAVELLER_FIELDS = (
    "first_name",
    "last_name",
    "date_of_birth",
    "nationality",
    "passport_number",
    "dietary_notes",
    "medical_notes",
    "answers",
)


def _unit_allowance(items: Sequence[BookingItem]) -> dict[str, int]:
    allowed: dict[str, int] = {}
    for item in items:
        for code, count in item.units.items():
            allowed[code] = allowed.get(code, 0) + count
    return allowed


def _clean_traveller(values: dict, label: str) -> dict:
    """Validated, normalised traveller fields (a subset of TRAVELLER_FIELDS) ready to store."""
    unknown = set(values) - set(TRAVELLER_FIELDS)
    if unknown:
        raise DomainError.for_field(f"{label}: unknown field(s) {', '.join(sorted(unknown))}.", "travellers")
    cleaned = {}
    for name, value in values.items():
        if name == "date_of_birth":
            if isinstance(value, str) and value:
                try:
                    value = dt.date.fromisoformat(value)
                except ValueError:
                    raise DomainError.for_field(
                        f"{label}: the date of birth is YYYY-MM-DD.", "travellers"
                    ) from None
            if value and (isinstance(value, dt.datetime) or not isinstance(value, dt.date)):
                raise DomainError.for_field(f"{label}: the date of birth is YYYY-MM-DD.", "travellers")
            if value and value >= timezone.localdate():
                raise DomainError.for_field(f"{label}: the date of birth must be in the past.", "travellers")
            cleaned[name] = value.isoformat() if value else ""
        elif name == "answers":
            if not isinstance(value, dict):
                raise DomainError.for_field(f"{label}: answers are question code → answer.", "travellers")
            cleaned[name] = json.dumps(value) if value else ""
        else:
            value = (value or "").strip() if isinstance(value, str) or value is None else None
            if value is None:
                raise DomainError.for_field(f"{label}: {name.replace('_', ' ')} is text.", "travellers")
            if name == "nationality":
                value = value.upper()
                if value and (len(value) != 2 or not value.isalpha() or not value.isascii()):
                    raise DomainError.for_field(
                        f"{label}: nationality is a two-letter country code.", "travellers"
                    )
            limit = Traveller._meta.get_field(name)
            limit = getattr(limit, "plain_max_length", None) or getattr(limit, "max_length", None)
            if limit and len(value) > limit:
                raise DomainError.for_field(
                    f"{label}: {name.replace('_', ' ')} is at most {limit} characters.", "travellers"
                )
            cleaned[name] = value
    for name in ("first_name", "last_name"):
        if name in cleaned and not cleaned[name]:
            raise DomainError.for_field(f"{label} needs a first and a last name.", "travellers")
    return cleaned


def _add_travellers(
    booking: Booking, items: list[BookingItem], travellers: Sequence[TravellerDetails]
) -> list[Traveller]:
    """Name more travellers, within the units booked (counting those already named)."""
    allowed = _unit_allowance(items)
    given: dict[str, int] = {}
    seated: dict[tuple, int] = {}  # (item id, unit code) → travellers named on it
    for code, item_id in booking.travellers.values_list("unit_code", "item_id"):
        given[code] = given.get(code, 0) + 1
        seated[(item_id, code)] = seated.get((item_id, code), 0) + 1
    added = []
    for index, person in enumerate(travellers):
        label = f"Traveller {index + 1}"
        given[person.unit_code] = given.get(person.unit_code, 0) + 1
        if given[person.unit_code] > allowed.get(person.unit_code, 0):
            raise DomainError.for_field(
                f"{label} is a {person.unit_code!r}, but the booking has "
                f"{allowed.get(person.unit_code, 0)} of those.",
                "travellers",
            )
        fields = _clean_traveller(
            {
                name: getattr(person, name)
                for name in TRAVELLER_FIELDS
                if name not in ("first_name", "last_name")
            }
            | {"first_name": person.first_name, "last_name": person.last_name},
            label,
        )
        added.append(
            Traveller.objects.create(
                booking=booking,
                item=_item_with_room(items, person.unit_code, seated),
                unit_code=person.unit_code,
                **fields,
            )
        )
    return added


def _item_with_room(
    items: Sequence[BookingItem], unit_code: str, seated: dict[tuple, int]
) -> BookingItem | None:
    """The first item (in departure order) with an unnamed seat of this unit type; counts the traveller in."""
    for item in sorted(items, key=lambda item: (item.departure.starts_at, str(item.pk))):
        if seated.get((item.pk, unit_code), 0) < item.units.get(unit_code, 0):
            seated[(item.pk, unit_code)] = seated.get((item.pk, unit_code), 0) + 1
            return item
    return None


def details_cutoff(booking: Booking) -> dt.datetime | None:
    """Until when travellers may change their details online: the tenant's cut-off before the first departure."""
    first_start = selectors.first_start(booking)
    if first_start is None:
        return None
    hours = Tenant.objects.values_list("traveller_details_cutoff_hours", flat=True).get(pk=booking.tenant_id)
    return first_start - dt.timedelta(hours=hours)


TRAVELLERS_EDITABLE = (S.ON_HOLD, S.AWAITING_PAYMENT, S.CONFIRMED)


@transaction.atomic
def update_travellers(
    booking: Booking,
    changes: dict[str, dict] | None = None,
    *,
    add: Sequence[TravellerDetails] = (),
    actor=None,
    enforce_cutoff: bool = True,
) -> Booking:
    """Change named travellers' details (``changes``: traveller id → fields) and name more travellers (``add``,
    within the units booked). Travellers themselves may do it until the cut-off (``enforce_cutoff``); staff at any
    time while the booking is open. Announced in ``booking.modified`` (the voucher is issued again)."""
    booking = lock_booking(booking)
    if booking.status not in TRAVELLERS_EDITABLE:
        raise ConflictError(
            f"Booking {booking.reference} is {booking.get_status_display().lower()}; its travellers cannot be "
            "changed.",
            code="illegal_transition",
            fields={"status": [booking.status]},
        )
    if enforce_cutoff:
        cutoff = details_cutoff(booking)
        if cutoff is not None and timezone.now() >= cutoff:
            raise ConflictError(
                "Traveller details can no longer be changed online; please contact us.",
                code="after_cutoff",
                fields={"travellers": [f"Changes closed at {cutoff.isoformat()}."]},
            )
    changes = changes or {}
    if not changes and not add:
        raise DomainError.for_field("Nothing to change.", "travellers")
    travellers = {str(t.pk): t for t in booking.travellers.filter(pk__in=_valid_uuids(changes))}
    changed_fields: dict[str, list[str]] = {}
    for traveller_id, values in changes.items():
        traveller = travellers.get(next(iter(_valid_uuids([traveller_id])), None))
        if traveller is None:
            raise DomainError.for_field(f"Traveller {traveller_id} is not on this booking.", "travellers")
        if not isinstance(values, dict):
            raise DomainError.for_field(f"Traveller {traveller_id}: give the fields to change.", "travellers")
        cleaned = _clean_traveller(values, f"Traveller {traveller.first_name} {traveller.last_name}".strip())
        for name, value in cleaned.items():
            setattr(traveller, name, value)
        traveller.save(update_fields=list(cleaned))
        changed_fields[str(traveller.pk)] = sorted(cleaned)
    added = _add_travellers(booking, list(booking.items.select_related("departure")), add)
    booking.save(update_fields=["updated_at"])
    audit.record(  # field names only: the values are personal data
        audit.Action.CHANGE,
        actor=actor,
        target=booking,
        changes={"travellers": [None, {"changed": changed_fields, "added": len(added)}]},
    )
    publish(
        "booking.modified",
        booking,
        {
            "reference": booking.reference,
            "change": "travellers",
            "travellers": sorted(changed_fields) + [str(t.pk) for t in added],
            "by": _actor_label(actor),
        },
    )
    return booking


def _valid_uuids(values) -> list[str]:
    import uuid

    valid = []
    for value in values:
        try:
            valid.append(str(uuid.UUID(str(value))))
        except ValueError:
            continue
    return valid


def credit_available(agency: Agency, on: dt.date | None = None) -> int | None:
    """The agency's credit limit minus what it owes on account (computed from the bookings, never a counter), in
    minor units of its currency; None without a contract in force. A cancelled booking still owes its
    cancellation charge until paid."""
    contract = contract_on(agency, on or timezone.localdate())
    if contract is None:
        return None
    owed = Booking.objects.filter(agency=agency, on_account=True).aggregate(
        owed=Sum(
            Case(
                When(status__in=CREDIT_USING, then=F("total") - F("paid")),
                When(
                    status__in=(S.CANCELLED, S.REFUNDED),
                    cancellation_charge__gt=F("paid"),
                    then=F("cancellation_charge") - F("paid"),
                ),
                default=Value(0),
            )
        )
    )["owed"]
    return contract.credit_limit - (owed or 0)


def _check_credit(booking: Booking, due: int | None = None) -> None:
    """Refuse unless the agency's credit covers ``due`` more (default: the booking's balance; a confirmed booking
    already counts in what the agency owes, so a change of it checks only the increase)."""
    # The agency row lock serialises every on-account confirmation of one agency: two agents racing for the last
    # of the credit are decided one after the other, on committed numbers.
    agency = lock_agency(booking.agency_id)
    available = credit_available(agency)
    due = booking.balance if due is None else due
    if available is None:
        raise ConflictError(
            f"{agency} has no contract in force: it cannot book on account.", code="no_contract"
        )
    if due > available:
        raise ConflictError(
            f"{agency}'s credit does not cover this booking: {max(available, 0)} available, {due} due "
            f"(minor units of {agency.currency}).",
            code="credit_exceeded",
        )


@transaction.atomic
def confirm_booking(booking: Booking, *, actor=None, reason: str = "") -> Booking:
    """Held seats become sold. Allowed when nothing is due now (see the module docstring)."""
    if booking.on_account:
        lock_agency(booking.agency_id)  # its credit decides: the agency before the booking (core.locking)
    booking = _locked_for(booking, S.CONFIRMED)
    if booking.on_account:
        if booking.currency != booking.agency.currency:
            raise ConflictError("On-account bookings are in the agency's currency.", code="currency_mismatch")
        _check_credit(booking)
    elif (due := amount_due_now(booking)) > 0:
        raise ConflictError(
            f"{format_money(due, booking.currency)} is still due; take the payment first.",
            code="payment_due",
        )
    _lock_seats(booking)
    for item in booking.items.select_related("hold"):
        if item.hold is not None:
            inventory.convert_hold(item.hold)
    booking.confirmed_at = timezone.now()
    booking.expires_at = None
    return _move(booking, S.CONFIRMED, actor=actor, reason=reason)


def _give_back_promo(booking: Booking) -> None:
    for redemption in PromoRedemption.objects.filter(reference=str(booking.pk), released_at__isnull=True):
        promotions.release_promo(redemption)


@dataclass(frozen=True)
class CancellationTerms:
    """What cancelling now costs, per the tours' cancellation tiers (the strictest item decides).

    ``refund_percent`` of the price is waived; the rest is the ``charge`` the operator keeps. ``credit`` is what a
    credit note takes off the invoice; ``refundable`` is what goes back of the money received (never more than
    was paid, nothing while the charge is not covered)."""

    refund_percent: int
    charge: int
    credit: int
    refundable: int
    days_before: int | None


def cancellation_terms(booking: Booking, at: dt.datetime | None = None) -> CancellationTerms:
    at = at or timezone.now()
    if booking.status != S.CONFIRMED:  # nothing was sold yet: cancelling costs nothing
        return CancellationTerms(100, 0, booking.total, booking.paid, None)
    percents, days = [], []
    for item in booking.items.select_related("departure", "option__tour"):
        days_before = (item.departure.starts_at - at).days
        tier = (
            item.option.tour.cancellation_tiers.filter(days_before__lte=days_before)
            .order_by("-days_before")
            .first()
        )
        percents.append(tier.refund_percent if tier else 0)
        days.append(days_before)
    percent = min(percents, default=0)
    charge = booking.total - booking.total * percent // 100
    return CancellationTerms(
        refund_percent=percent,
        charge=charge,
        credit=booking.total - charge,
        refundable=max(0, booking.paid - charge),
        days_before=min(days, default=None),
    )


@transaction.atomic
def cancel_booking(
    booking: Booking,
    *,
    actor=None,
    reason: str = "",
    refundable_override: int | None = None,
) -> Booking:
    """Seats go back on sale (held or sold). The cancellation terms go into ``booking.cancelled`` for the credit
    note and the refund (issue 7). Staff may override the refundable amount (0 … paid) with a reason; the
    override is audited."""
    booking = _locked_for(booking, S.CANCELLED)
    terms = cancellation_terms(booking)
    refundable = terms.refundable
    if refundable_override is not None:
        if isinstance(refundable_override, bool) or not isinstance(refundable_override, int):
            raise DomainError.for_field(
                "The refundable amount is a whole number of minor units.", "refundable"
            )
        if not 0 <= refundable_override <= booking.paid:
            raise DomainError.for_field(
                f"The refundable amount is between 0 and what was paid ({booking.paid}).", "refundable"
            )
        if not reason.strip():
            raise DomainError.for_field("Say why the policy's refundable amount is overridden.", "reason")
        audit.record(
            audit.Action.CHANGE,
            actor=actor,
            target=booking,
            changes={"refundable": [terms.refundable, refundable_override], "reason": [None, reason.strip()]},
        )
        refundable = refundable_override
    _lock_seats(booking)
    for item in booking.items.select_related("hold"):
        if item.hold is None:
            continue
        if item.hold.status == Hold.Status.CONVERTED:
            inventory.release_sold_hold(item.hold)
        elif item.hold.status == Hold.Status.ACTIVE:
            inventory.release_hold(item.hold)
    _give_back_promo(booking)
    booking.cancelled_at = timezone.now()
    booking.expires_at = None
    charge, credit = terms.charge, terms.credit
    if refundable != terms.refundable:
        # Giving back more than the policy lowers the charge by as much (goodwill), giving back less raises it.
        charge = min(max(terms.charge - (refundable - terms.refundable), 0), booking.total)
        credit = booking.total - charge
    booking.cancellation_charge = charge
    payload = {
        "refund_percent": terms.refund_percent,
        "charge": charge,
        "credit": credit,
        "refundable": refundable,
        "policy_refundable": terms.refundable,
    }
    # What is not already on its way back goes back to the payer (gateway parts are sent after commit): a
    # pending refund (still counted in ``paid``) is part of what the policy gives back, not extra.
    to_refund = min(refundable - refunds.pending_total(booking), refunds.refundable(booking))
    if to_refund > 0:
        refunds.request_refund_locked(
            booking,
            amount=to_refund,
            reason=f"Cancellation of booking {booking.reference}",
            request_key=f"cancellation-{booking.pk}",
            actor=actor,
            kind=refunds.Kind.CANCELLATION,
        )
    return _move(booking, S.CANCELLED, actor=actor, reason=reason, payload=payload)


# A payer who has started paying keeps the seats at least this long (a slow 3-D Secure or PayPal approval).
PAYMENT_GRACE = dt.timedelta(minutes=15)


@transaction.atomic
def keep_seats_for_payment(booking: Booking) -> Booking:
    """The payer has started paying online: extend the booking's holds to at least ``PAYMENT_GRACE`` from now
    (within their maximum lifetime), so the seats wait for the gateway's answer. Money arriving after the seats
    lapsed anyway is refunded automatically."""
    booking = lock_booking(booking)
    if booking.status not in (S.ON_HOLD, S.AWAITING_PAYMENT):
        return booking
    wanted = timezone.now() + PAYMENT_GRACE
    for item in booking.items.select_related("hold").order_by("hold_id"):
        hold = item.hold
        if hold is None or hold.status != Hold.Status.ACTIVE or hold.expires_at >= wanted:
            continue
        latest = hold.created_at + dt.timedelta(seconds=inventory.hold_max_lifetime_seconds())
        seconds = int((min(wanted, latest) - hold.expires_at).total_seconds())
        if seconds > 0:
            try:
                inventory.extend_hold(hold, seconds)
            except DomainError:
                continue  # lapsed meanwhile: the payment, if it comes, is refunded
    booking.expires_at = (
        Hold.objects.filter(booking_item__booking=booking, status=Hold.Status.ACTIVE).aggregate(
            first=Min("expires_at")
        )["first"]
        or booking.expires_at
    )
    booking.save(update_fields=["expires_at", "updated_at"])
    return booking


@transaction.atomic
def mark_refunded(booking: Booking, *, reason: str = "") -> Booking:
    """A cancelled booking whose money has all gone back (``payments.refunds`` calls this when the last refund
    succeeds)."""
    booking = _locked_for(booking, S.REFUNDED)
    return _move(booking, S.REFUNDED, reason=reason or "Fully refunded")


@transaction.atomic
def expire_booking(booking: Booking) -> Booking:
    """An unconfirmed booking whose holds lapsed: its seats are free again. ``hold.expired`` names the booking's
    holds (holds outside bookings expire silently in the inventory: nobody waits for them)."""
    booking = _locked_for(booking, S.EXPIRED)
    _lock_seats(booking)
    lapsed = []
    for item in booking.items.select_related("hold"):
        if item.hold is None:
            continue
        if item.hold.status == Hold.Status.ACTIVE:
            inventory.release_hold(item.hold)
        lapsed.append(str(item.hold_id))
    publish("hold.expired", booking, {"reference": booking.reference, "holds": lapsed})
    _give_back_promo(booking)
    booking.expires_at = None
    return _move(booking, S.EXPIRED, reason="The seats were not confirmed in time.")


@transaction.atomic
def complete_booking(booking: Booking, *, actor=None) -> Booking:
    """The tour took place (all its departures have ended)."""
    booking = _locked_for(booking, S.COMPLETED)
    last_end = booking.items.aggregate(last=Max("departure__ends_at"))["last"]
    if last_end is None or last_end > timezone.now():
        raise ConflictError("The booking's tour has not ended yet.", code="not_ended")
    return _move(booking, S.COMPLETED, actor=actor)


@transaction.atomic
def mark_no_show(booking: Booking, *, actor=None, reason: str = "") -> Booking:
    """Nobody came. Seats stay sold (the departure has run); nothing is refunded by this."""
    booking = _locked_for(booking, S.NO_SHOW)
    first_start = selectors.first_start(booking)
    if first_start is None or first_start > timezone.now():
        raise ConflictError("A no-show is recorded once the departure has started.", code="not_started")
    return _move(booking, S.NO_SHOW, actor=actor, reason=reason)


def expire_lapsed_bookings(now: dt.datetime | None = None, limit: int = 200) -> int:
    """Beat: unconfirmed bookings whose seats lapsed become expired (their holds are released by then or now)."""
    now = now or timezone.now()
    due = list(
        Booking.objects.filter(status__in=(S.ON_HOLD, S.AWAITING_PAYMENT), expires_at__lte=now)
        .order_by("expires_at")
        .values_list("pk", flat=True)[:limit]
    )
    expired = 0
    for pk in due:
        try:
            with transaction.atomic():
                expire_booking(Booking.objects.get(pk=pk))
            expired += 1
        except IllegalTransition:
            continue  # confirmed or cancelled meanwhile
    return expired


CHANGEABLE = (S.ON_HOLD, S.AWAITING_PAYMENT, S.CONFIRMED)
MOVABLE = CHANGEABLE  # the name other modules know


def _locked_for_change(booking: Booking) -> Booking:
    """The booking locked, and for an on-account booking its agency first: a change may need the agency's
    credit (``core.locking.LOCK_ORDER``: an agency before its bookings, both before any seat)."""
    if booking.on_account:
        lock_agency(booking.agency_id)
    return lock_booking(booking)


def _changeable(booking: Booking, item: BookingItem, verb: str) -> BookingItem:
    """The booking (locked by the caller) may still change, and ``item`` is one of its items, locked too."""
    if booking.status not in CHANGEABLE:
        raise ConflictError(
            f"Booking {booking.reference} is {booking.get_status_display().lower()}; it cannot be {verb}.",
            code="illegal_transition",
            fields={"status": [booking.status]},
        )
    item_id = next(iter(_valid_uuids([getattr(item, "pk", item)])), None)
    item = (
        next(
            iter(
                lock_rows(
                    BookingItem.objects.select_related("hold", "departure").filter(
                        pk=item_id, booking=booking
                    )
                )
            ),
            None,
        )
        if item_id
        else None
    )
    if item is None:
        raise DomainError.for_field("This item is not part of the booking.", "item")
    return item


def _redeemed_promo_code(booking: Booking) -> str | None:
    """The promo code this booking used (its redemption is still counted), if any."""
    return (
        PromoRedemption.objects.filter(reference=str(booking.pk), released_at__isnull=True)
        .values_list("promo__code", flat=True)
        .first()
    )


def _requote(booking: Booking, item: BookingItem, departure, units: dict[str, int]) -> pricing.Quote:
    """A fresh price for changed seats, for the same buyer. A booking keeps the promo code it was sold with: its
    one use is already counted (the redemption stays, no new use is taken) and the code's terms apply to the new
    seats; a code that can no longer be applied refuses the change rather than silently dropping the discount."""
    code = item.quote.get("promo_code") if _redeemed_promo_code(booking) else None
    try:
        quote = pricing.quote(
            departure.option,
            departure,
            units,
            _pricing_channel(booking.channel),
            agency=booking.agency,
            currency=booking.currency,
            promo_code=code,
            promo_redeemed=code is not None,
        )
    except DomainError as error:
        if code is None or not error.code.startswith("promo_"):
            raise
        raise ConflictError(
            f"The booking's promo code {code} no longer applies ({error.message}); the booking cannot be "
            "re-priced with it. Ask the operator to change it.",
            code="promo_no_longer_valid",
            fields={"promo_code": [error.message]},
        ) from None
    return quote


def _lock_departures_in_order(old: Hold | None, departure) -> None:
    """Lock the old hold, then both departure rows in id order, before moving seats between them: two bookings
    moving in opposite directions at once would otherwise each hold one departure and wait for the other. (The
    hold first, as the expiry sweep does: hold, then its departure.)"""
    if old is None:
        lock_seats(Hold.objects.none(), [departure.pk])
    else:
        lock_seats(Hold.objects.filter(pk=old.pk), [departure.pk, old.departure_id])


def _swap_hold(booking: Booking, item: BookingItem, departure, units: dict[str, int], purpose: str) -> Hold:
    """Give back the item's seats and take ``units`` on ``departure`` instead, sold if they were sold.

    Old seats go first so that a smaller or larger change on the same departure can reuse them. Nobody sees the
    moment in between: the first UPDATE of a departure row locks it until our commit, and a refusal to take the
    new seats (409 not_enough_seats, …) rolls the whole change back, old seats included. An unconfirmed booking's
    new hold lapses when the old one would have: changing a booking buys no time."""
    now = timezone.now()
    old = item.hold
    _lock_departures_in_order(old, departure)
    sold = booking.status == S.CONFIRMED
    ttl = None
    if sold:
        if old is not None and old.status == Hold.Status.CONVERTED:
            inventory.release_sold_hold(old)
        elif old is not None and old.status == Hold.Status.ACTIVE:
            inventory.release_hold(old)
    else:
        if old is None or old.status != Hold.Status.ACTIVE or old.expires_at <= now:
            raise ConflictError(
                f"The seats of booking {booking.reference} have lapsed; it cannot be changed.",
                code="hold_expired",
            )
        ttl = max(1, int((old.expires_at - now).total_seconds()))
        inventory.release_hold(old)
    channel = Channel.TRADE if booking.agency_id else Channel.RETAIL
    new = inventory.place_hold(
        departure, units, channel, f"{purpose}:{uuid7()}", agency=booking.agency, ttl=ttl
    )
    if sold:
        inventory.convert_hold(new)
    return new


def _save_changed_item(
    booking: Booking, item: BookingItem, departure, hold: Hold, quote: pricing.Quote
) -> int:
    """Store the item's new seats and price; returns the price difference (added to the booking's total)."""
    difference = quote.total.amount - item.total
    item.departure, item.option, item.hold = departure, departure.option, hold
    item.units, item.seats = hold.units, hold.seats
    item.quote, item.total = quote.as_snapshot(), quote.total.amount
    item.save(update_fields=["departure", "option", "hold", "units", "seats", "quote", "total"])
    booking.total += difference
    if booking.status != S.CONFIRMED:
        booking.expires_at = Hold.objects.filter(
            booking_item__booking=booking, status=Hold.Status.ACTIVE
        ).aggregate(first=Min("expires_at"))["first"]
    if booking.on_account and difference > 0:
        # A confirmed booking already counts in what the agency owes (at its old total): only the increase needs
        # credit. An unconfirmed one is checked in full now, and again when it is confirmed.
        _check_credit(booking, difference if booking.status == S.CONFIRMED else booking.balance)
    booking.save(update_fields=["total", "expires_at", "updated_at"])
    schedules.replan(booking)
    # Paid more than the new price (fewer travellers, a cheaper date): the difference goes back to the payer.
    surplus = min(booking.paid - refunds.pending_total(booking) - booking.total, refunds.refundable(booking))
    if surplus > 0:
        refunds.request_refund_locked(
            booking,
            amount=surplus,
            reason=f"Booking {booking.reference} now costs less than was paid",
            request_key=f"reduced-{uuid7()}",
            actor=None,
            kind=refunds.Kind.SURPLUS,
        )
    return difference


def _not_started(item: BookingItem, verb: str) -> None:
    if item.departure.starts_at <= timezone.now():
        raise ConflictError(
            f"The departure of {item.departure.starts_at:%Y-%m-%d %H:%M} UTC has started; the booking cannot be "
            f"{verb}.",
            code="departure_started",
        )


@transaction.atomic
def move_departure(
    booking: Booking, item: BookingItem, departure, *, actor=None, reason: str = ""
) -> Booking:
    """Move one item's travellers to another departure of the same tour: the new seats are taken and the old ones
    given back in one transaction (never both, never neither, as anyone else sees it); the item is re-priced and
    the difference announced in ``booking.modified``."""
    booking = _locked_for_change(booking)
    item = _changeable(booking, item, "moved")
    if departure.pk == item.departure_id:
        raise DomainError.for_field("The booking is already on this departure.", "departure")
    if departure.tour_id != item.departure.tour_id:
        raise DomainError.for_field(
            "A booking moves to another date of the same tour; book the other tour instead.", "departure"
        )
    _not_started(item, "moved")
    quote = _requote(booking, item, departure, item.units)
    hold = _swap_hold(booking, item, departure, item.units, "move")
    difference = _save_changed_item(booking, item, departure, hold, quote)
    publish(
        "booking.modified",
        booking,
        {
            "reference": booking.reference,
            "change": "departure",
            "item": str(item.pk),
            "moved_to": str(departure.pk),
            "difference": difference,
            "reason": reason,
            "by": _actor_label(actor),
        },
    )
    return booking


def _clean_units(units) -> dict[str, int]:
    if not isinstance(units, dict) or not all(isinstance(code, str) for code in units):
        raise DomainError.for_field('Give the new count per unit type, e.g. {"adult": 2}.', "units")
    for code, count in units.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise DomainError(
                f"{code}: a whole number, 0 or more.",
                code="invalid",
                fields={f"units.{code}": ["A whole number, 0 or more."]},
            )
    cleaned = {code: count for code, count in units.items() if count}
    if not cleaned:
        raise DomainError.for_field("A booking keeps at least one traveller; cancel it instead.", "units")
    return cleaned


@transaction.atomic
def modify_booking(
    booking: Booking,
    item: BookingItem,
    units: dict[str, int],
    *,
    remove_travellers: Sequence = (),
    actor=None,
    reason: str = "",
) -> Booking:
    """Change the units of one item on the same departure (travellers join or leave): its seats are swapped for
    the new count in one transaction, the item re-priced, the difference announced in ``booking.modified``.

    Named travellers must fit the new units: where a unit type's count drops below the travellers named for it,
    the ones leaving are listed in ``remove_travellers`` (they are deleted) or the change is refused. Any named
    traveller of the booking may be listed (their seat stays, unnamed, if its unit type does not drop)."""
    booking = _locked_for_change(booking)
    item = _changeable(booking, item, "changed")
    _not_started(item, "changed")
    new_units = _clean_units(units)
    old_units = dict(item.units)
    if new_units == old_units:
        raise DomainError.for_field("These are the units booked already.", "units")

    if isinstance(remove_travellers, (str, bytes)):
        raise DomainError.for_field("Give a list of traveller ids.", "remove_travellers")
    leaving = [str(traveller_id) for traveller_id in remove_travellers]
    leaving_ids = set(_valid_uuids(leaving))
    if len(_valid_uuids(leaving)) != len(leaving):
        raise DomainError.for_field("Travellers to remove are given by their ids.", "remove_travellers")
    travellers = list(booking.travellers.all())
    unknown = leaving_ids - {str(traveller.pk) for traveller in travellers}
    if unknown:
        raise DomainError.for_field(
            f"Traveller {sorted(unknown)[0]} is not on this booking.", "remove_travellers"
        )
    other_items = [other for other in booking.items.all() if other.pk != item.pk]
    allowed = _unit_allowance(other_items)
    for code, count in new_units.items():
        allowed[code] = allowed.get(code, 0) + count
    staying: dict[str, int] = {}
    for traveller in travellers:
        if str(traveller.pk) not in leaving_ids:
            staying[traveller.unit_code] = staying.get(traveller.unit_code, 0) + 1
    for code, named in sorted(staying.items()):
        if named > allowed.get(code, 0):
            message = (
                f"{named} {code!r} traveller(s) are named but {allowed.get(code, 0)} {code!r} would remain: "
                f"say which {named - allowed.get(code, 0)} leave (remove_travellers)."
            )
            raise DomainError.for_field(message, "remove_travellers")

    quote = _requote(booking, item, item.departure, new_units)
    hold = _swap_hold(booking, item, item.departure, new_units, "modify")
    difference = _save_changed_item(booking, item, item.departure, hold, quote)
    if leaving_ids:
        booking.travellers.filter(pk__in=leaving_ids).delete()
    publish(
        "booking.modified",
        booking,
        {
            "reference": booking.reference,
            "change": "units",
            "item": str(item.pk),
            "units": {"from": old_units, "to": item.units},
            "removed_travellers": sorted(leaving_ids),
            "difference": difference,
            "reason": reason,
            "by": _actor_label(actor),
        },
    )
    return booking
