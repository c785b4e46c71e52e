"""What the traveller's manage-booking pages show and allow, read from the booking (no writes here: those are
``bookings.services``). Labels are marked for translation; the views render them in the booking's language."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from bookings import services
from bookings.models import Booking, Document, Traveller
from bookings.selectors import first_start
from payments.services.schedules import PAYABLE_STATUSES, amount_due_now, outstanding
from tours.models import TourTranslation, UnitType

Status = Booking.Status
STATUS_LABELS = {
    Status.DRAFT: gettext_lazy("Being created"),
    Status.ON_HOLD: gettext_lazy("On hold"),
    Status.AWAITING_PAYMENT: gettext_lazy("Awaiting payment"),
    Status.CONFIRMED: gettext_lazy("Confirmed"),
    Status.COMPLETED: gettext_lazy("Completed"),
    Status.CANCELLED: gettext_lazy("Cancelled"),
    Status.EXPIRED: gettext_lazy("Expired"),
    Status.REFUNDED: gettext_lazy("Refunded"),
    Status.NO_SHOW: gettext_lazy("Not attended"),
}
# Channels whose bookings the traveller may cancel here; the others belong to a partner's own terms.
ONLINE_CANCELLABLE_CHANNELS = (Booking.Channel.RETAIL, Booking.Channel.BACK_OFFICE)


@dataclass(frozen=True)
class Unit:
    label: str
    count: int


@dataclass(frozen=True)
class Item:
    tour_title: str
    option_name: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    time_zone: str
    meeting_point: str
    units: list[Unit] = field(default_factory=list)


@dataclass(frozen=True)
class Slot:
    """A seat booked without a named traveller yet."""

    unit_code: str
    unit_label: str


def status_label(booking: Booking) -> str:
    return str(STATUS_LABELS.get(booking.status, booking.get_status_display()))


def _unit_names(tour_ids) -> dict[tuple, str]:
    return {
        (tour_id, code): name
        for tour_id, code, name in UnitType.objects.filter(tour_id__in=tour_ids).values_list(
            "tour_id", "code", "name"
        )
    }


def items(booking: Booking) -> list[Item]:
    rows = list(
        booking.items.select_related("departure", "option__tour").order_by("departure__starts_at", "id")
    )
    tour_ids = {row.option.tour_id for row in rows}
    translations = {
        t.tour_id: t for t in TourTranslation.objects.filter(tour_id__in=tour_ids, language=booking.language)
    }
    unit_names = _unit_names(tour_ids)
    result = []
    for row in rows:
        tour = row.option.tour
        translated = translations.get(tour.pk)
        result.append(
            Item(
                tour_title=(translated.title if translated else "") or tour.title,
                option_name=row.option.name,
                starts_at=row.departure.starts_at,
                ends_at=row.departure.ends_at,
                time_zone=tour.time_zone,
                meeting_point=(translated.meeting_point if translated else "") or tour.meeting_point,
                units=[
                    Unit(unit_names.get((tour.pk, code), code), count)
                    for code, count in row.units.items()
                    if count
                ],
            )
        )
    return result


def is_trade(booking: Booking) -> bool:
    """Booked through a travel agent: the price, payments and invoices are between the agency and us (a trade
    price and an on-account invoice are the agency's business, not the traveller's)."""
    return booking.channel == Booking.Channel.TRADE or booking.agency_id is not None


def _visible_documents(booking: Booking):
    rows = booking.documents.all()
    return rows.filter(kind=Document.Kind.VOUCHER) if is_trade(booking) else rows


def documents(booking: Booking) -> list[Document]:
    """The latest voucher, then invoices and credit notes in the order they were issued (for a trade booking,
    the voucher only)."""
    rows = list(
        _visible_documents(booking).defer("content").select_related("invoice").order_by("created_at", "id")
    )
    vouchers = [row for row in rows if row.kind == Document.Kind.VOUCHER]
    latest_voucher = max(vouchers, key=lambda row: row.version, default=None)
    return ([latest_voucher] if latest_voucher else []) + [
        row for row in rows if row.kind != Document.Kind.VOUCHER
    ]


def document(booking: Booking, document_id) -> Document | None:
    return _visible_documents(booking).filter(pk=document_id).first()


def is_open(booking: Booking) -> bool:
    """Not yet cancelled, expired or over: cancelling is a question worth answering on the page."""
    return Status.CANCELLED in services.TRANSITIONS[booking.status]


def cancellation_refusal(booking: Booking, now: dt.datetime | None = None) -> str | None:
    """Why the traveller cannot cancel this booking online (None: they can)."""
    now = now or timezone.now()
    if is_trade(booking):
        return _("This booking was made by your travel agent: please contact them to cancel it.")
    if booking.channel not in ONLINE_CANCELLABLE_CHANNELS:
        return _("This booking was made through one of our partners: please contact them to cancel it.")
    if Status.CANCELLED not in services.TRANSITIONS[booking.status]:
        return _("This booking is %(status)s; it cannot be cancelled.") % {
            "status": status_label(booking).lower()
        }
    start = first_start(booking)
    if start is not None and start <= now:
        return _("The tour has already started, so it can no longer be cancelled online. Please contact us.")
    return None


def travellers(booking: Booking) -> list[Traveller]:
    return list(booking.travellers.order_by("id"))


def unit_labels(booking: Booking) -> dict[str, str]:
    """Unit code → the tour's name for it (adult, child…)."""
    tour_ids = set(booking.items.values_list("option__tour_id", flat=True))
    labels: dict[str, str] = {}
    for (_tour_id, code), name in _unit_names(tour_ids).items():
        labels.setdefault(code, name)
    return labels


def open_slots(booking: Booking, named: list[Traveller], labels: dict[str, str]) -> list[Slot]:
    """One slot per unit booked that has no named traveller yet (units are counted over all items, as
    ``services.update_travellers`` counts them)."""
    unnamed: dict[str, int] = {}
    for units in booking.items.order_by("id").values_list("units", flat=True):
        for code, count in units.items():
            unnamed[code] = unnamed.get(code, 0) + count
    for traveller in named:
        unnamed[traveller.unit_code] = unnamed.get(traveller.unit_code, 0) - 1
    return [
        Slot(code, labels.get(code, code)) for code, count in unnamed.items() for _n in range(max(0, count))
    ]


def travellers_refusal(booking: Booking, now: dt.datetime | None = None) -> str | None:
    """Why the traveller cannot change traveller details online now (None: they can)."""
    now = now or timezone.now()
    if booking.status not in services.TRAVELLERS_EDITABLE:
        return _("This booking is %(status)s; its travellers can no longer be changed.") % {
            "status": status_label(booking).lower()
        }
    cutoff = services.details_cutoff(booking)
    if cutoff is not None and now >= cutoff:
        return _("Traveller details can no longer be changed online. Please contact us.")
    return None


def payable_online(booking: Booking) -> bool:
    """Whether the page offers "Pay": something is due now, or a confirmed booking's balance may be paid early.
    An agency's on-account booking is settled by the agency."""
    if is_trade(booking) or booking.status not in PAYABLE_STATUSES or outstanding(booking) <= 0:
        return False
    return amount_due_now(booking) > 0 or booking.status == Status.CONFIRMED
