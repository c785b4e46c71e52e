"""The retail booking form: departure, how many of each unit type, the lead traveller, optional traveller names,
the terms. It checks what a form can; ``place_hold`` and ``create_booking`` check everything again and have the
last word (their errors are put back on this form by the view)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence

from django import forms
from django.utils.translation import gettext_lazy as _

from bookings.services import Lead, TravellerDetails
from inventory.availability import DepartureAvailability
from tours.models import UnitType

# Above this many of one unit type a traveller calls the operator (group bookings are priced differently).
MAX_UNITS_PER_TYPE = 20
IDEMPOTENCY_KEY_LENGTH = 32  # characters of token_urlsafe(24)


def new_idempotency_key() -> str:
    """One per rendered form: submitting the same form twice makes one booking."""
    return secrets.token_urlsafe(24)


def visitor_bound_key(session_key: str, form_key: str) -> str:
    """The key the booking services see: the form's key within the visitor's session. The form's key travels in
    the page (and could be planted in a link), so on its own it must never find another visitor's booking."""
    return hashlib.sha256(f"retail-visitor:{session_key}\n{form_key}".encode()).hexdigest()


def unit_field_name(code: str) -> str:
    return f"units_{code}"


class BookingForm(forms.Form):
    """Fields: ``departure``, ``units_<code>`` per unit type, lead name/email/phone, ``traveller_<n>_first_name``
    / ``_last_name`` for each seat (optional), ``accept_terms``, ``marketing_opt_in``, ``idempotency_key``."""

    departure = forms.TypedChoiceField(label=_("Date and time"), coerce=uuid.UUID)
    lead_name = forms.CharField(
        label=_("Full name"), max_length=200, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    lead_email = forms.EmailField(
        label=_("Email address"),
        max_length=254,
        help_text=_("Your confirmation and tickets are sent here."),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    lead_phone = forms.CharField(
        label=_("Mobile phone"),
        max_length=32,
        required=False,
        help_text=_("So the guide can reach you on the day."),
        widget=forms.TextInput(attrs={"autocomplete": "tel", "type": "tel"}),
    )
    accept_terms = forms.BooleanField(
        label=_("I accept the booking terms and the cancellation policy."),
        error_messages={"required": _("Please accept the booking terms to continue.")},
    )
    marketing_opt_in = forms.BooleanField(
        label=_("Send me news and offers by email (optional)."), required=False
    )
    idempotency_key = forms.CharField(
        widget=forms.HiddenInput,
        min_length=16,
        max_length=64,
        error_messages={"required": _("Reload the page.")},
    )

    def __init__(
        self,
        data=None,
        *,
        departures: Sequence[DepartureAvailability],
        departure_labels: dict[uuid.UUID, str],
        unit_types: Sequence[UnitType],
        traveller_slots: Sequence[UnitType] = (),
        **kwargs,
    ):
        super().__init__(data, **kwargs)
        self.unit_types = list(unit_types)
        self.fields["departure"].choices = [("", _("Choose a date"))] + [
            (str(item.departure_id), departure_labels[item.departure_id]) for item in departures
        ]
        self.fields["departure"].error_messages["invalid_choice"] = _(
            "This departure cannot be booked any more; please choose another date."
        )
        for unit_type in self.unit_types:
            limit = min(unit_type.max_per_booking or MAX_UNITS_PER_TYPE, MAX_UNITS_PER_TYPE)
            self.fields[unit_field_name(unit_type.code)] = forms.TypedChoiceField(
                label=_unit_label(unit_type),
                choices=[(count, str(count)) for count in range(0, limit + 1)],
                coerce=int,
                initial=0,
                required=False,
                empty_value=0,
            )
        # One pair of name fields per seat of the units chosen when the page was drawn; names are optional here
        # (the traveller can add them later on the manage page) but a started pair must be complete.
        self.traveller_slots = list(traveller_slots)
        self.traveller_fields: list[tuple[UnitType, forms.BoundField, forms.BoundField]] = []
        for number, unit_type in enumerate(self.traveller_slots, start=1):
            for part, label, autocomplete in (
                ("first_name", _("First name"), "given-name"),
                ("last_name", _("Last name"), "family-name"),
            ):
                self.fields[f"traveller_{number}_{part}"] = forms.CharField(
                    label=label,
                    max_length=100,
                    required=False,
                    widget=forms.TextInput(attrs={"autocomplete": "off" if number > 1 else autocomplete}),
                )
            self.traveller_fields.append(
                (unit_type, self[f"traveller_{number}_first_name"], self[f"traveller_{number}_last_name"])
            )

    @property
    def unit_fields(self) -> list[forms.BoundField]:
        return [self[unit_field_name(unit_type.code)] for unit_type in self.unit_types]

    @property
    def detail_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("lead_name", "lead_email", "lead_phone")]

    def clean(self) -> dict:
        cleaned = super().clean()
        if self.unit_types and not any(self.units().values()):
            self.add_error(None, _("Choose how many people are coming (at least one)."))
        for number in range(1, len(self.traveller_slots) + 1):
            first = (cleaned.get(f"traveller_{number}_first_name") or "").strip()
            last = (cleaned.get(f"traveller_{number}_last_name") or "").strip()
            if bool(first) != bool(last):
                missing = f"traveller_{number}_last_name" if first else f"traveller_{number}_first_name"
                self.add_error(missing, _("Give both the first and the last name, or neither."))
        return cleaned

    def units(self) -> dict[str, int]:
        """Unit code → count, counts above zero only (valid fields only)."""
        data = getattr(self, "cleaned_data", {})
        counts = {
            unit_type.code: data.get(unit_field_name(unit_type.code)) or 0 for unit_type in self.unit_types
        }
        return {code: count for code, count in counts.items() if count}

    def lead(self) -> Lead:
        data = self.cleaned_data
        return Lead(name=data["lead_name"], email=data["lead_email"], phone=data.get("lead_phone") or "")

    def travellers(self) -> list[TravellerDetails]:
        """Named seats only, and no more of a unit type than were booked (the units may have been lowered)."""
        left = dict(self.units())
        named = []
        for number, unit_type in enumerate(self.traveller_slots, start=1):
            first = self.cleaned_data.get(f"traveller_{number}_first_name", "").strip()
            last = self.cleaned_data.get(f"traveller_{number}_last_name", "").strip()
            if first and last and left.get(unit_type.code, 0) > 0:
                left[unit_type.code] -= 1
                named.append(TravellerDetails(unit_code=unit_type.code, first_name=first, last_name=last))
        return named


def _unit_label(unit_type: UnitType) -> str:
    if unit_type.min_age is not None and unit_type.max_age is not None:
        return _("%(name)s (age %(low)s–%(high)s)") % {
            "name": unit_type.name,
            "low": unit_type.min_age,
            "high": unit_type.max_age,
        }
    if unit_type.min_age is not None:
        return _("%(name)s (age %(low)s+)") % {"name": unit_type.name, "low": unit_type.min_age}
    return unit_type.name


def traveller_slots(unit_types: Sequence[UnitType], units: dict[str, int]) -> list[UnitType]:
    """One entry per person to name, in unit type order: 2 adults and 1 child → [adult, adult, child]."""
    return [unit_type for unit_type in unit_types for _seat in range(units.get(unit_type.code, 0))]
