"""The retail shop window: the tenant's published tours, one tour's page with its next departures, and the booking
form that places a hold and creates the booking in one step, then sends the traveller to the checkout page.

Server-rendered and complete without JavaScript; ``static/js/booking_form.js`` only saves round trips."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

from django.conf import settings
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from bookings.links import manage_token
from bookings.models import Booking
from bookings.services import book_departure
from core.errors import ConflictError, DomainError
from core.http import client_ip
from inventory import search
from inventory.availability import MAX_RANGE_DAYS, DepartureAvailability, Status, availability
from inventory.models import Departure
from portals.retail.forms_booking import (
    MAX_UNITS_PER_TYPE,
    BookingForm,
    new_idempotency_key,
    traveller_slots,
    unit_field_name,
    visitor_bound_key,
)
from portals.retail.throttle import BOOKING_WINDOW_SECONDS, booking_allowed
from tours import pricing
from tours.models import Channel, Destination, Tour, TourImage, TourTranslation, UnitType

PAGE_SIZE = 12
BOOKABLE = (Status.AVAILABLE, Status.LIMITED)
# The version of the booking terms a traveller accepts on this form (stored on the booking's Consent row).
TERMS_VERSION = getattr(settings, "RETAIL_TERMS_VERSION", "2026-01")
SEATS_GONE_CODES = ("not_enough_seats", "departure_not_open", "sales_closed")
# Stored in an anonymous visitor's session so the session is saved and its cookie sent: booking keys are bound to it.
VISITOR_SESSION_FLAG = "retail_visitor"


def _language(request) -> str:
    """The visitor's choice (``?lang=``) among the site's languages, else the tenant's default language."""
    wanted = request.GET.get("lang", "")
    return wanted if wanted in dict(settings.LANGUAGES) else (request.tenant.default_language or "en")


def _published_tour(slug: str) -> Tour:
    tour = Tour.objects.filter(slug=slug, status=Tour.Status.PUBLISHED).select_related("destination").first()
    if tour is None:
        raise Http404("No such tour on sale.")
    return tour


def _translated(tour: Tour, language: str) -> dict[str, str]:
    """The traveller-facing texts in ``language`` where a translation has them, else the tour's own."""
    names = ("title", "summary", "description", "inclusions", "exclusions", "meeting_point")
    texts = {name: getattr(tour, name) for name in names}
    translation_row = TourTranslation.objects.filter(tour=tour, language=language).first()
    if translation_row is not None:
        texts.update(
            {name: getattr(translation_row, name) for name in names if getattr(translation_row, name)}
        )
    return texts


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _duration(minutes: int) -> str:
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days and not rest:
        return ngettext("%(count)d day", "%(count)d days", days) % {"count": days}
    if hours and mins:
        return _("%(hours)d h %(minutes)d min") % {"hours": hours + days * 24, "minutes": mins}
    if hours or days:
        return ngettext("%(count)d hour", "%(count)d hours", hours + days * 24) % {"count": hours + days * 24}
    return ngettext("%(count)d minute", "%(count)d minutes", mins) % {"count": mins}


def _first_images(tour_ids: list[uuid.UUID]) -> dict[uuid.UUID, TourImage]:
    images: dict[uuid.UUID, TourImage] = {}
    for image in TourImage.objects.filter(tour_id__in=tour_ids).order_by("tour_id", "position"):
        images.setdefault(image.tour_id, image)
    return images


# --- list ----------------------------------------------------------------------------------------------------------


@require_safe
def tour_list(request):
    language = _language(request)
    with translation.override(language):
        text = request.GET.get("q", "").strip()[: search.MAX_TEXT]
        destination = request.GET.get("destination", "").strip() or None
        try:
            page = max(int(request.GET.get("page", "1")), 1)
        except ValueError:
            page = 1
        query = search.SearchQuery(
            text=text,
            language=language,
            destination=destination,
            sort="relevance" if text else "next_departure",
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
        )
        try:
            found = search.search_tours(query)
        except DomainError:
            found = search.SearchResults(total=0, results=[])
        images = _first_images([listing.id for listing in found.results])
        tours = [
            {
                "listing": listing,
                "duration": _duration(listing.duration_minutes),
                "image": images.get(listing.id),
            }
            for listing in found.results
        ]
        destinations = Destination.objects.filter(tours__status=Tour.Status.PUBLISHED).distinct()
        return render(
            request,
            "retail/tour_list.html",
            {
                "tours": tours,
                "total": found.total,
                "q": text,
                "destination": destination or "",
                "destinations": destinations,
                "language": language,
                "previous_page": page - 1 if page > 1 else None,
                "next_page": page + 1 if page * PAGE_SIZE < found.total else None,
            },
        )


# --- detail --------------------------------------------------------------------------------------------------------


def _next_departures(tour: Tour, currency: str) -> list[DepartureAvailability]:
    """Departures over the coming quarter (the longest range one availability call answers), live seats."""
    today = timezone.now().astimezone(ZoneInfo(tour.time_zone)).date()
    return availability(
        tour, today, today + dt.timedelta(days=MAX_RANGE_DAYS - 1), Channel.RETAIL, currency=currency
    )


def _departure_label(item: DepartureAvailability, option_names: dict[uuid.UUID, str]) -> str:
    when = f"{formats.date_format(item.local_date, 'D j M Y')} · {item.local_time:%H:%M}"
    seats = ngettext("%(count)d seat left", "%(count)d seats left", item.seats_left) % {
        "count": item.seats_left
    }
    option = option_names.get(item.option_id)
    return " · ".join(part for part in (when, option, seats) if part)


def _option_names(tour: Tour) -> dict[uuid.UUID, str]:
    """Option names, only when the tour sells more than one (else the name says nothing)."""
    options = list(tour.options.filter(is_active=True).values_list("id", "name"))
    return dict(options) if len(options) > 1 else {}


def _unit_prices(
    currency: str, departure: DepartureAvailability | None, unit_types: list[UnitType]
) -> list[dict]:
    """What one of each unit type pays on ``departure`` (prices may differ by date: shown for that date)."""
    if departure is None:
        return []
    found = Departure.objects.select_related("option").get(pk=departure.departure_id)
    prices = []
    for unit_type in unit_types:
        try:
            quote = pricing.quote(found.option, found, {unit_type.code: 1}, Channel.RETAIL, currency=currency)
        except DomainError:  # e.g. a unit type not sold alone or not priced on this list
            continue
        prices.append({"unit_type": unit_type, "price": quote.total})
    return prices


@require_safe
def tour_detail(request, slug: str):
    language = _language(request)
    with translation.override(language):
        tour = _published_tour(slug)
        texts = _translated(tour, language)
        departures = _next_departures(tour, request.tenant.base_currency)
        option_names = _option_names(tour)
        unit_types = list(tour.unit_types.all())
        bookable = [item for item in departures if item.status in BOOKABLE]
        return render(
            request,
            "retail/tour_detail.html",
            {
                "tour": tour,
                "texts": texts,
                "inclusions": _lines(texts["inclusions"]),
                "exclusions": _lines(texts["exclusions"]),
                "duration": _duration(tour.duration_minutes),
                "images": list(tour.images.all()),
                "itinerary": list(tour.itinerary.all()),
                "cancellation_tiers": list(tour.cancellation_tiers.all()),
                "departures": [
                    {
                        "item": item,
                        "option": option_names.get(item.option_id, ""),
                        "bookable": item.status in BOOKABLE,
                    }
                    for item in departures
                ],
                "unit_prices": _unit_prices(
                    request.tenant.base_currency, bookable[0] if bookable else None, unit_types
                ),
                "price_date": bookable[0].local_date if bookable else None,
                "language": language,
            },
        )


# --- booking -------------------------------------------------------------------------------------------------------


def _counts(data, unit_types: list[UnitType]) -> dict[str, int]:
    """Unit counts read leniently from a query string or form (what to draw; the form validates on submit)."""
    counts = {}
    for unit_type in unit_types:
        try:
            count = int(data.get(unit_field_name(unit_type.code), "0") or 0)
        except ValueError:
            continue
        if 0 < count <= MAX_UNITS_PER_TYPE:
            counts[unit_type.code] = count
    return counts


def _chosen(data, bookable: dict[str, DepartureAvailability]) -> DepartureAvailability | None:
    return bookable.get(data.get("departure", ""))


def _quote(departure: DepartureAvailability | None, units: dict[str, int], currency: str):
    """(quote, problem): the price of the current choice, or why there is none yet."""
    if departure is None or not units:
        return None, None
    found = Departure.objects.select_related("option").get(pk=departure.departure_id)
    try:
        return pricing.quote(found.option, found, units, Channel.RETAIL, currency=currency), None
    except DomainError as error:
        return None, error.message


def _put_errors_on_form(form: BookingForm, error: DomainError) -> None:
    """A service's refusal, on the fields it names (else above the form)."""
    if error.code in SEATS_GONE_CODES:
        form.add_error(
            None,
            _(
                "Sorry, there are not enough seats left on this departure any more. "
                "Choose fewer people or another date."
            ),
        )
        return
    if not error.fields:
        form.add_error(None, error.message)
        return
    for key, problems in error.fields.items():
        field = key if key in ("lead_name", "lead_email") else None
        if key.startswith("units."):
            field = unit_field_name(key.removeprefix("units."))
        for problem in problems if isinstance(problems, list) else [problems]:
            # Unnamed fields (e.g. "units": too few participants) carry the specific reason: shown above the form.
            form.add_error(field if field in form.fields else None, str(problem))


def _visitor_session_key(request) -> str:
    """The visitor's session key, starting a session for a new (or expired) visitor. Reading the flag first loads
    the session, so a cookie naming a session that no longer exists does not count as one."""
    if not request.session.get(VISITOR_SESSION_FLAG):
        request.session[VISITOR_SESSION_FLAG] = True
        request.session.save()
    return request.session.session_key


def _same_email(first: str, second: str) -> bool:
    return first.strip().casefold() == second.strip().casefold()


def _ask_to_book_again(form: BookingForm, message: str) -> None:
    """A refusal the traveller fixes by checking the form and sending it again: with a fresh key, so the resent form
    is a new request."""
    form.data = form.data.copy()
    form.data["idempotency_key"] = new_idempotency_key()
    form.add_error(None, message)


def _too_many_bookings(request) -> HttpResponse:
    response = render(
        request,
        "retail/too_many_bookings.html",
        {"minutes": BOOKING_WINDOW_SECONDS // 60},
        status=429,
    )
    response["Retry-After"] = str(BOOKING_WINDOW_SECONDS)
    return response


def _book(request, form: BookingForm, language: str) -> Booking:
    """The form's key only counts within this visitor's session: a key planted in a link never finds someone
    else's booking."""
    departure = Departure.objects.select_related("option").get(pk=form.cleaned_data["departure"])
    return book_departure(
        departure,
        form.units(),
        lead=form.lead(),
        language=language,
        idempotency_key=visitor_bound_key(
            _visitor_session_key(request), form.cleaned_data["idempotency_key"]
        ),
        travellers=form.travellers(),
        consent={
            "terms_version": TERMS_VERSION,
            "marketing_opt_in": form.cleaned_data["marketing_opt_in"],
            "ip_address": client_ip(request),
        },
    )


@never_cache
@require_http_methods(["GET", "POST"])
def book(request, slug: str):
    """GET: the form (``?departure=<id>&units_adult=2`` preselect and price). POST ``action=quote``: the price of
    the current choice, nothing created. POST: hold + booking, then 303 to the checkout page."""
    language = _language(request)
    with translation.override(language):
        tour = _published_tour(slug)
        currency = request.tenant.base_currency
        departures = [item for item in _next_departures(tour, currency) if item.status in BOOKABLE]
        bookable = {str(item.departure_id): item for item in departures}
        option_names = _option_names(tour)
        labels = {item.departure_id: _departure_label(item, option_names) for item in departures}
        unit_types = list(tour.unit_types.all())
        source = request.POST if request.method == "POST" else request.GET
        units = _counts(source, unit_types)
        form_kwargs = {
            "departures": departures,
            "departure_labels": labels,
            "unit_types": unit_types,
            "traveller_slots": traveller_slots(unit_types, units),
        }
        status = 200
        _visitor_session_key(request)
        if request.method == "POST" and request.POST.get("action") != "quote":
            if not booking_allowed(request.tenant.pk, client_ip(request)):
                return _too_many_bookings(request)
            form = BookingForm(request.POST, **form_kwargs)
            status = 400
            if form.is_valid():
                try:
                    booking = _book(request, form, language)
                except DomainError as error:
                    status = 409 if isinstance(error, ConflictError) else 400
                    if error.code == "idempotency_key_reused":  # this form was sent before with other choices
                        _ask_to_book_again(
                            form,
                            _(
                                "Your choices changed since this form was sent. Please check them and book again."
                            ),
                        )
                    else:
                        _put_errors_on_form(form, error)
                else:
                    if _same_email(booking.lead_email, form.cleaned_data["lead_email"]):
                        checkout = reverse("retail:checkout", kwargs={"token": manage_token(booking)})
                        return HttpResponseRedirect(checkout, status=303)
                    # The same form was sent before for another lead traveller: never hand out that booking.
                    status = 409
                    _ask_to_book_again(
                        form,
                        _(
                            "This form was already used for a booking with another email address. "
                            "Please check your details and book again."
                        ),
                    )
        else:
            # Drawn (or redrawn with a price) without validating: nothing was sent to be checked yet.
            initial = {unit_field_name(code): count for code, count in units.items()}
            initial["departure"] = source.get("departure", "")
            # A key from the query string could have been planted in a link: a drawn form always gets its own.
            posted_key = request.POST.get("idempotency_key") if request.method == "POST" else None
            initial["idempotency_key"] = posted_key or new_idempotency_key()
            if request.method == "POST":
                initial.update(
                    {
                        name: request.POST.get(name, "")
                        for name in request.POST
                        if name.startswith(("lead_", "traveller_"))
                    }
                )
                initial["marketing_opt_in"] = bool(request.POST.get("marketing_opt_in"))
            form = BookingForm(None, initial=initial, **form_kwargs)
        chosen = _chosen(source, bookable)
        quote, quote_problem = _quote(chosen, units, currency)
        response: HttpResponse = render(
            request,
            "retail/book.html",
            {
                "tour": tour,
                "texts": _translated(tour, language),
                "form": form,
                "quote": quote,
                "quote_lines": [line for line in quote.lines if line.kind != pricing.LineKind.COMMISSION]
                if quote
                else [],
                "quote_problem": quote_problem,
                "chosen": chosen,
                "has_departures": bool(departures),
                "cancellation_tiers": list(tour.cancellation_tiers.all()),
                "language": language,
                "action_url": request.path + (f"?lang={language}" if "lang" in request.GET else ""),
            },
            status=status,
        )
        response["Content-Language"] = language
        return response
