"""Forms of the traveller's pages. They check what a form can (required names, a past date of birth, a country
from the list); the booking services check everything again and have the last word."""

from __future__ import annotations

import datetime as dt
import functools

from babel import Locale, UnknownLocaleError
from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from bookings.models import Traveller
from bookings.services import TravellerDetails

_NOT_COUNTRIES = {"EU", "EZ", "UN", "QO", "ZZ", "XA", "XB"}  # regions and pseudo-territories in CLDR


@functools.cache
def _countries(language: str) -> tuple[tuple[str, str], ...]:
    try:
        names = Locale.parse(language.replace("-", "_")).territories
    except (UnknownLocaleError, ValueError):
        names = Locale("en").territories
    pairs = [
        (code, name)
        for code, name in names.items()
        if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
    ]
    return tuple(sorted(pairs, key=lambda pair: pair[1].casefold()))


class FindBookingForm(forms.Form):
    reference = forms.CharField(
        label=_("Booking reference"),
        max_length=20,
        help_text=_("The 8 characters on your confirmation, e.g. K7QX2MPA."),
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        ),
    )
    email = forms.EmailField(
        label=_("Email address used for the booking"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    def clean_reference(self) -> str:
        return "".join(self.cleaned_data["reference"].split()).upper()


def _text(label, max_length: int, *, required: bool = False, textarea: bool = False, autocomplete: str = ""):
    attrs = {"autocomplete": autocomplete} if autocomplete else {}
    widget = forms.Textarea(attrs={"rows": 2, **attrs}) if textarea else forms.TextInput(attrs=attrs)
    return forms.CharField(label=label, max_length=max_length, required=required, widget=widget)


class TravellerForm(forms.Form):
    """One traveller: a named one (``traveller``) whose changed fields are sent, or an open seat (``unit_code``)
    that is left alone when every field is empty."""

    first_name = _text(_("First name"), 100, autocomplete="given-name")
    last_name = _text(_("Last name"), 100, autocomplete="family-name")
    date_of_birth = forms.DateField(
        label=_("Date of birth"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date", "autocomplete": "bday"}, format="%Y-%m-%d"),
    )
    nationality = forms.ChoiceField(label=_("Nationality"), required=False)
    passport_number = _text(_("Passport or ID number"), 40)
    dietary_notes = _text(_("Dietary requirements"), 500, textarea=True)
    medical_notes = _text(_("Medical notes the guide should know"), 500, textarea=True)

    FIELDS = (
        "first_name",
        "last_name",
        "date_of_birth",
        "nationality",
        "passport_number",
        "dietary_notes",
        "medical_notes",
    )

    def __init__(
        self,
        *args,
        language: str,
        traveller: Traveller | None = None,
        unit_code: str = "",
        **kwargs,
    ):
        self.traveller = traveller
        self.unit_code = traveller.unit_code if traveller else unit_code
        if traveller is not None:
            kwargs["initial"] = self._current(traveller)
        super().__init__(*args, **kwargs)
        countries = list(_countries(language))
        current = self.initial.get("nationality")
        if current and current not in dict(countries):
            countries.append((current, current))
        self.fields["nationality"].choices = [("", "—")] + countries
        if traveller is not None:
            self.fields["first_name"].required = True
            self.fields["last_name"].required = True

    @staticmethod
    def _current(traveller: Traveller) -> dict:
        values = {name: getattr(traveller, name) or "" for name in TravellerForm.FIELDS}
        try:
            values["date_of_birth"] = (
                dt.date.fromisoformat(values["date_of_birth"]) if values["date_of_birth"] else None
            )
        except ValueError:
            values["date_of_birth"] = None
        return values

    @property
    def is_blank(self) -> bool:
        """An open seat left empty (judged on what was typed, so a half-valid form is not "blank")."""
        return self.traveller is None and not any(
            str(self.data.get(self.add_prefix(name)) or "").strip() for name in self.FIELDS
        )

    def clean_date_of_birth(self):
        value = self.cleaned_data.get("date_of_birth")
        if value and value >= timezone.localdate():
            raise forms.ValidationError(_("The date of birth must be in the past."))
        if value and value.year < 1900:
            raise forms.ValidationError(_("Check the year of birth."))
        return value

    def clean(self):
        cleaned = super().clean()
        if self.traveller is None and not self.is_blank:
            for name in ("first_name", "last_name"):
                if not cleaned.get(name) and name not in self.errors:
                    self.add_error(name, _("Enter the traveller's first and last name."))
        return cleaned

    def changes(self) -> dict:
        """The fields of a named traveller that differ from what is stored."""
        current = self._current(self.traveller)
        return {
            name: self.cleaned_data.get(name) or ""
            for name in self.FIELDS
            if (self.cleaned_data.get(name) or "") != (current[name] or "")
        }

    def details(self) -> TravellerDetails:
        values = {name: self.cleaned_data.get(name) or "" for name in self.FIELDS}
        values["date_of_birth"] = values["date_of_birth"] or None
        return TravellerDetails(unit_code=self.unit_code, **values)
