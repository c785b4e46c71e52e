"""The people travelling on a booking: named when it is made or later, within the units booked; their details
changed by themselves until the tenant's cut-off, by staff at any time."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from bookings import selectors
from bookings.locks import lock_booking
from bookings.models import Booking, BookingItem, Traveller
from bookings.services.transitions import Status, actor_label
from core.errors import ConflictError, DomainError
from core.ids import valid_uuids
from events.outbox import publish
from tenants import audit
from tenants.models import Tenant

if TYPE_CHECKING:
    from accounts.models import User


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


def unit_allowance(items: Sequence[BookingItem]) -> dict[str, int]:
    allowed: dict[str, int] = {}
    for item in items:
        for code, count in item.units.items():
            allowed[code] = allowed.get(code, 0) + count
    return allowed


def clean_traveller(values: dict, label: str) -> dict:
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
            model_field = Traveller._meta.get_field(name)
            limit = getattr(model_field, "plain_max_length", None) or getattr(model_field, "max_length", None)
            if limit and len(value) > limit:
                raise DomainError.for_field(
                    f"{label}: {name.replace('_', ' ')} is at most {limit} characters.", "travellers"
                )
            cleaned[name] = value
    for name in ("first_name", "last_name"):
        if name in cleaned and not cleaned[name]:
            raise DomainError.for_field(f"{label} needs a first and a last name.", "travellers")
    return cleaned


def add_travellers(
    booking: Booking, items: list[BookingItem], travellers: Sequence[TravellerDetails]
) -> list[Traveller]:
    """Name more travellers, within the units booked (counting those already named)."""
    allowed = unit_allowance(items)
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
        fields = clean_traveller(
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


TRAVELLERS_EDITABLE = (Status.ON_HOLD, Status.AWAITING_PAYMENT, Status.CONFIRMED)


@transaction.atomic
def update_travellers(
    booking: Booking,
    changes: dict[str, dict] | None = None,
    *,
    add: Sequence[TravellerDetails] = (),
    actor: User | None = None,
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
    travellers = {str(t.pk): t for t in booking.travellers.filter(pk__in=valid_uuids(changes))}
    changed_fields: dict[str, list[str]] = {}
    for traveller_id, values in changes.items():
        traveller = travellers.get(next(iter(valid_uuids([traveller_id])), ""))  # "": no traveller's id
        if traveller is None:
            raise DomainError.for_field(f"Traveller {traveller_id} is not on this booking.", "travellers")
        if not isinstance(values, dict):
            raise DomainError.for_field(f"Traveller {traveller_id}: give the fields to change.", "travellers")
        cleaned = clean_traveller(values, f"Traveller {traveller.first_name} {traveller.last_name}".strip())
        for name, value in cleaned.items():
            setattr(traveller, name, value)
        traveller.save(update_fields=list(cleaned))
        changed_fields[str(traveller.pk)] = sorted(cleaned)
    added = add_travellers(booking, list(booking.items.select_related("departure")), add)
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
            "by": actor_label(actor),
        },
    )
    return booking
