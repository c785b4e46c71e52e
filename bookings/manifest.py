"""A departure's manifest: who travels, for the guide and the operations team (back-office page, CSV, PDF).

One row per traveller of the bookings that hold sold seats on the departure (confirmed, and afterwards completed
or no-show), plus one "(name to come)" row per booked unit nobody has been named for yet. Five queries whatever
the number of bookings or travellers. Times are shown in the tour's time zone.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import Counter
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bookings.models import Booking, BookingItem, Traveller
from inventory.models import Departure
from tours.models import BookingQuestion, UnitType

ON_MANIFEST = (Booking.Status.CONFIRMED, Booking.Status.COMPLETED, Booking.Status.NO_SHOW)
NAME_TO_COME = "(name to come)"


@dataclass(frozen=True)
class ManifestRow:
    reference: str
    booking_id: str
    status: str
    lead_name: str
    lead_phone: str
    unit: str
    traveller: str  # NAME_TO_COME for an unnamed seat
    named: bool
    date_of_birth: str
    age: int | None
    nationality: str
    dietary_notes: str
    medical_notes: str
    answers: tuple[tuple[str, str], ...]  # (question, answer)
    agency: str
    agent_reference: str
    checked_in_at: dt.datetime | None  # in the tour's time zone

    @property
    def answers_text(self) -> str:
        return "; ".join(f"{question}: {answer}" for question, answer in self.answers)


@dataclass(frozen=True)
class UnitTotal:
    unit: str
    booked: int
    named: int
    checked_in: int


@dataclass(frozen=True)
class Manifest:
    departure: Departure
    tour_title: str
    option_name: str
    time_zone: str
    starts_local: dt.datetime
    capacity: int
    sold: int
    bookings: int
    rows: list[ManifestRow]
    unit_totals: list[UnitTotal]

    @property
    def travellers(self) -> int:
        return len(self.rows)

    @property
    def checked_in(self) -> int:
        return sum(1 for row in self.rows if row.checked_in_at is not None)


def _age_on(date_of_birth: str, day: dt.date) -> int | None:
    try:
        born = dt.date.fromisoformat(date_of_birth)
    except ValueError:
        return None
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _answers(raw: str, questions: dict[str, str]) -> tuple[tuple[str, str], ...]:
    if not raw:
        return ()
    try:
        answers = json.loads(raw)
    except ValueError:
        return (("Answers", raw),)
    if not isinstance(answers, dict):
        return (("Answers", str(answers)),)
    pairs = []
    for code, value in answers.items():
        if value in (None, "", []):
            continue
        if isinstance(value, bool):
            value = "yes" if value else "no"
        elif isinstance(value, list):
            value = ", ".join(str(part) for part in value)
        pairs.append((questions.get(code, code), str(value)))
    return tuple(pairs)


def departure_manifest(departure_id) -> Manifest | None:
    """The manifest of one departure of the current tenant, or None when there is no such departure."""
    departure = Departure.objects.select_related("tour", "option").filter(pk=departure_id).first()
    if departure is None:
        return None
    tour = departure.tour
    zone = ZoneInfo(tour.time_zone)
    starts_local = departure.starts_at.astimezone(zone)
    unit_types = list(UnitType.objects.filter(tour=tour).order_by("position", "code"))
    unit_names = {unit.code: unit.name for unit in unit_types}
    unit_order = {unit.code: index for index, unit in enumerate(unit_types)}
    questions = dict(BookingQuestion.objects.filter(tour=tour).values_list("code", "text"))
    items = list(
        BookingItem.objects.filter(departure=departure, booking__status__in=ON_MANIFEST)
        .select_related("booking__agency")
        .order_by("booking__reference", "id")
    )
    travellers_by_item: dict = {}
    for traveller in Traveller.objects.filter(item__in=[item.pk for item in items]).order_by("id"):
        travellers_by_item.setdefault(traveller.item_id, []).append(traveller)

    rows: list[ManifestRow] = []
    booked: Counter[str] = Counter()
    named: Counter[str] = Counter()
    checked_in: Counter[str] = Counter()
    for item in items:
        booking = item.booking
        common = {
            "reference": booking.reference,
            "booking_id": str(booking.pk),
            "status": booking.get_status_display(),
            "lead_name": booking.lead_name,
            "lead_phone": booking.lead_phone,
            "agency": str(booking.agency) if booking.agency else "",
            "agent_reference": booking.agent_reference,
        }
        travellers = sorted(
            travellers_by_item.get(item.pk, []),
            key=lambda t: (unit_order.get(t.unit_code, len(unit_order)), t.last_name, t.first_name),
        )
        named_here: Counter[str] = Counter()
        for traveller in travellers:
            named_here[traveller.unit_code] += 1
            rows.append(
                ManifestRow(
                    **common,
                    unit=unit_names.get(traveller.unit_code, traveller.unit_code),
                    traveller=f"{traveller.first_name} {traveller.last_name}".strip(),
                    named=True,
                    date_of_birth=traveller.date_of_birth,
                    age=_age_on(traveller.date_of_birth, starts_local.date())
                    if traveller.date_of_birth
                    else None,
                    nationality=traveller.nationality,
                    dietary_notes=traveller.dietary_notes,
                    medical_notes=traveller.medical_notes,
                    answers=_answers(traveller.answers, questions),
                    checked_in_at=traveller.checked_in_at.astimezone(zone)
                    if traveller.checked_in_at
                    else None,
                )
            )
            if traveller.checked_in_at:
                checked_in[traveller.unit_code] += 1
        units = sorted(item.units.items(), key=lambda pair: unit_order.get(pair[0], len(unit_order)))
        for code, count in units:
            booked[code] += count
            named[code] += min(named_here[code], count)
            for _ in range(max(count - named_here[code], 0)):
                rows.append(
                    ManifestRow(
                        **common,
                        unit=unit_names.get(code, code),
                        traveller=NAME_TO_COME,
                        named=False,
                        date_of_birth="",
                        age=None,
                        nationality="",
                        dietary_notes="",
                        medical_notes="",
                        answers=(),
                        checked_in_at=None,
                    )
                )
    codes = sorted(booked, key=lambda code: unit_order.get(code, len(unit_order)))
    return Manifest(
        departure=departure,
        tour_title=tour.title,
        option_name=departure.option.name,
        time_zone=tour.time_zone,
        starts_local=starts_local,
        capacity=departure.capacity,
        sold=departure.sold,
        bookings=len({item.booking_id for item in items}),
        rows=rows,
        unit_totals=[
            UnitTotal(unit_names.get(code, code), booked[code], named[code], checked_in[code])
            for code in codes
        ],
    )


CSV_COLUMNS = [
    "Booking",
    "Status",
    "Lead name",
    "Lead phone",
    "Unit",
    "Traveller",
    "Date of birth",
    "Age",
    "Nationality",
    "Dietary notes",
    "Medical notes",
    "Answers",
    "Agency",
    "Agent reference",
    "Checked in",
]
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): names, notes and answers
# are typed by travellers, so such a cell gets a leading quote and stays text.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def manifest_csv(manifest: Manifest) -> bytes:
    """UTF-8 with a byte-order mark, so Excel reads accents and non-Latin names correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in manifest.rows:
        writer.writerow(
            [
                spreadsheet_safe(value)
                for value in (
                    row.reference,
                    row.status,
                    row.lead_name,
                    row.lead_phone,
                    row.unit,
                    row.traveller,
                    row.date_of_birth,
                    "" if row.age is None else row.age,
                    row.nationality,
                    row.dietary_notes,
                    row.medical_notes,
                    row.answers_text,
                    row.agency,
                    row.agent_reference,
                    row.checked_in_at.strftime("%Y-%m-%d %H:%M") if row.checked_in_at else "",
                )
            ]
        )
    return "\ufeff".encode() + buffer.getvalue().encode("utf-8")


def manifest_filename(manifest: Manifest, extension: str) -> str:
    return f"manifest-{manifest.starts_local:%Y%m%d-%H%M}-{manifest.departure.option.code}.{extension}"
