"""The retail shop: tour list and page for travellers, and the booking form that holds seats, creates the booking
and sends the traveller on to the checkout page."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from bookings.links import booking_for_manage_token
from bookings.models import Booking, Consent, Traveller
from inventory.models import Departure, Hold
from payments.models import PaymentSchedule
from tenants.context import tenant_context
from tests.bookings.world import World
from tests.catalogue import make_departure, make_option, make_price_list, make_tour, make_unit_types
from tests.factories import host_of
from tours.models import Tour


def _client(world: World) -> Client:
    client = Client()
    client.defaults["HTTP_HOST"] = host_of(world.tenant)
    return client


def _book_url(world: World) -> str:
    return f"/tours/{world.tour.slug}/book/"


def _form_key(client: Client, world: World) -> str:
    """The idempotency key the booking form was drawn with (a fresh one per render)."""
    form = client.get(_book_url(world), {"departure": str(world.departure.pk), "units_adult": "2"})
    assert form.status_code == 200
    match = re.search(r'name="idempotency_key" value="([^"]+)"', form.content.decode())
    assert match, "the booking form carries an idempotency key"
    return match.group(1)


def _booking_post(world: World, key: str, **overrides) -> dict:
    data = {
        "departure": str(world.departure.pk),
        "units_adult": "2",
        "units_child": "1",
        "units_infant": "0",
        "lead_name": "Ana Lima",
        "lead_email": "ana@example.com",
        "lead_phone": "+351 912 345 678",
        "traveller_1_first_name": "Ana",
        "traveller_1_last_name": "Lima",
        "accept_terms": "on",
        "marketing_opt_in": "on",
        "idempotency_key": key,
    }
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


def _counts(world: World) -> tuple[int, int, int]:
    with tenant_context(world.tenant):
        departure = Departure.objects.get(pk=world.departure.pk)
        return Booking.objects.count(), Hold.objects.count(), departure.held


def _checkout_booking(world: World, location: str) -> Booking | None:
    match = re.fullmatch(r"/booking/([^/]+)/pay/", location)
    if match is None:
        return None
    with tenant_context(world.tenant):
        return booking_for_manage_token(match.group(1))


# --- list and detail -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_list_shows_published_tours_with_their_from_price():
    world = World()
    with tenant_context(world.tenant):
        Tour.objects.filter(pk=world.tour.pk).update(title="Lisbon Old Town Walk", summary="Alfama by foot.")
        make_tour(title="Secret Draft Tour", status=Tour.Status.DRAFT)

    response = _client(world).get("/tours/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Lisbon Old Town Walk" in html and "Alfama by foot." in html
    assert "€100.00" in html  # one adult, the lowest retail price, in the tenant's base currency
    assert f'href="/tours/{world.tour.slug}/"' in html
    assert "Secret Draft Tour" not in html


@pytest.mark.django_db
def test_the_list_searches_by_text():
    world = World()
    with tenant_context(world.tenant):
        Tour.objects.filter(pk=world.tour.pk).update(title="Lisbon Old Town Walk")
        other = make_tour(title="Sintra Palace Day Trip")
        make_departure(make_option(other))

    found = _client(world).get("/tours/", {"q": "palace"}).content.decode()

    assert "Sintra Palace Day Trip" in found
    assert "Lisbon Old Town Walk" not in found


@pytest.mark.django_db
def test_a_search_with_a_nul_byte_finds_nothing_rather_than_failing():
    """Found by a probe: PostgreSQL refuses NUL in text, and the list answered 500."""
    client = _client(World())
    for params in ({"q": "pal\x00ace"}, {"destination": "\x00"}):
        response = client.get("/tours/", params)
        assert response.status_code == 200, params


@pytest.mark.django_db
def test_the_tour_page_shows_details_departures_with_live_seats_and_unit_prices(
    django_capture_on_commit_callbacks,
):
    world = World()
    with tenant_context(world.tenant):
        Tour.objects.filter(pk=world.tour.pk).update(
            description="Through the oldest quarter.",
            inclusions="Guide\nTram ticket",
            exclusions="Lunch",
            meeting_point="Praça do Comércio, by the arch",
        )
    client = _client(world)
    key = _form_key(client, world)  # the availability answer is cached now
    with django_capture_on_commit_callbacks(execute=True):  # the hold's after-commit cache bump runs
        booking = client.post(_book_url(world), _booking_post(world, key))
    assert booking.status_code == 303  # 3 of the 20 seats are now held (2 adults + 1 child)

    response = client.get(f"/tours/{world.tour.slug}/")

    html = response.content.decode()
    assert response.status_code == 200
    for text in ("Through the oldest quarter.", "Tram ticket", "Lunch", "Praça do Comércio, by the arch"):
        assert text in html
    assert "17 seats left" in html
    assert "€100.00" in html and "€50.00" in html  # adult and child prices
    assert f"/tours/{world.tour.slug}/book/?departure={world.departure.pk}" in html
    assert "14 days before: full refund" in html and "2 days before: 50 % refund" in html


@pytest.mark.django_db
def test_the_booking_form_prices_the_choice_without_creating_anything():
    world = World()
    client = _client(world)

    drawn = client.get(
        _book_url(world), {"departure": str(world.departure.pk), "units_adult": "2", "units_child": "1"}
    )
    by_post = client.post(_book_url(world), _booking_post(world, "k" * 20, action="quote", units_adult="3"))

    assert drawn.status_code == 200
    assert "€250.00" in drawn.content.decode()  # 2 × 100 + 1 × 50
    assert drawn.content.decode().count('name="traveller_') == 6  # first and last name for each of 3 seats
    assert by_post.status_code == 200
    assert "€350.00" in by_post.content.decode()
    assert _counts(world) == (0, 0, 0)


@pytest.mark.django_db
def test_unpublished_tours_are_not_found():
    world = World()
    with tenant_context(world.tenant):
        Tour.objects.filter(pk=world.tour.pk).update(status=Tour.Status.DRAFT)
    client = _client(world)

    assert client.get(f"/tours/{world.tour.slug}/").status_code == 404
    assert client.get(_book_url(world)).status_code == 404
    assert client.post(_book_url(world), _booking_post(world, "k" * 20)).status_code == 404
    assert _counts(world) == (0, 0, 0)


# --- booking -------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_booking_creates_an_on_hold_booking_with_a_schedule_and_redirects_to_checkout():
    world = World()
    client = _client(world)

    response = client.post(_book_url(world), _booking_post(world, _form_key(client, world)))

    assert response.status_code == 303
    booking = _checkout_booking(world, response["Location"])
    assert booking is not None, response["Location"]
    with tenant_context(world.tenant):
        assert booking.status == Booking.Status.ON_HOLD
        assert booking.channel == Booking.Channel.RETAIL
        assert booking.language == "en"
        assert booking.total == 25000
        assert (booking.lead_name, booking.lead_email) == ("Ana Lima", "ana@example.com")
        item = booking.items.get()
        assert item.units == {"adult": 2, "child": 1}
        assert item.hold.status == Hold.Status.ACTIVE
        assert PaymentSchedule.objects.filter(booking=booking).exists()
        consent = Consent.objects.get(booking=booking)
        assert consent.marketing_opt_in is True and consent.terms_version
        named = [
            (person.first_name, person.unit_code) for person in Traveller.objects.filter(booking=booking)
        ]
        assert named == [("Ana", "adult")]
    assert _counts(world) == (1, 1, 3)


@pytest.mark.django_db
def test_the_booking_language_is_the_active_language():
    world = World()
    client = _client(world)

    response = client.post(_book_url(world) + "?lang=fr", _booking_post(world, _form_key(client, world)))

    assert response.status_code == 303
    booking = _checkout_booking(world, response["Location"])
    with tenant_context(world.tenant):
        assert Booking.objects.get(pk=booking.pk).language == "fr"


@pytest.mark.django_db
def test_a_double_submit_makes_one_booking():
    world = World()
    client = _client(world)
    data = _booking_post(world, _form_key(client, world))

    first = client.post(_book_url(world), data)
    second = client.post(_book_url(world), data)

    assert first.status_code == second.status_code == 303
    assert first["Location"] == second["Location"]
    assert _counts(world) == (1, 1, 3)


@pytest.mark.django_db
def test_two_renders_of_the_form_make_two_bookings():
    world = World()
    client = _client(world)

    client.post(_book_url(world), _booking_post(world, _form_key(client, world)))
    client.post(_book_url(world), _booking_post(world, _form_key(client, world)))

    assert _counts(world) == (2, 2, 6)


PLANTED_KEY = "planted-by-attacker-0123456789"
VICTIM = {
    "lead_name": "Vera Victim",
    "lead_email": "vera.victim@example.com",
    "traveller_1_last_name": "Victim",
}


def _victims_pii_in(response) -> list[str]:
    html = response.content.decode()
    return [value for value in ("Vera", "Victim", "vera.victim@example.com") if value in html]


@pytest.mark.django_db
def test_a_key_in_the_link_is_never_the_forms_key():
    world = World()
    client = _client(world)

    form = client.get(
        _book_url(world),
        {"departure": str(world.departure.pk), "units_adult": "2", "idempotency_key": PLANTED_KEY},
    )

    assert form.status_code == 200
    assert PLANTED_KEY not in form.content.decode()
    assert 'name="idempotency_key" value="' in form.content.decode()


@pytest.mark.django_db
def test_a_planted_key_never_hands_the_victims_booking_to_another_visitor():
    world = World()
    victim, attacker = _client(world), _client(world)
    _form_key(victim, world)  # the victim opens the booking page (worst case: the form still carries the key)
    booked = victim.post(_book_url(world), _booking_post(world, PLANTED_KEY, **VICTIM))
    assert booked.status_code == 303
    victims_booking = _checkout_booking(world, booked["Location"])

    _form_key(attacker, world)  # with a session of its own
    replayed = attacker.post(
        _book_url(world), _booking_post(world, PLANTED_KEY, traveller_1_first_name="Ana")
    )
    cookieless = _client(world).post(_book_url(world), _booking_post(world, PLANTED_KEY))

    for response in (replayed, cookieless):
        assert response.status_code in (303, 409), response.status_code
        if response.status_code == 303:
            assert response["Location"] != booked["Location"]
            theirs = _checkout_booking(world, response["Location"])
            with tenant_context(world.tenant):
                assert theirs.pk != victims_booking.pk
                assert Booking.objects.get(pk=theirs.pk).lead_email == "ana@example.com"
            followed = attacker.get(response["Location"])
            assert _victims_pii_in(followed) == []
        assert _victims_pii_in(response) == []
    with tenant_context(world.tenant):
        assert Booking.objects.get(pk=victims_booking.pk).lead_email == VICTIM["lead_email"]


@pytest.mark.django_db
def test_the_same_form_resent_for_another_email_does_not_show_the_first_booking():
    world = World()
    client = _client(world)
    key = _form_key(client, world)
    first = client.post(_book_url(world), _booking_post(world, key, **VICTIM))

    second = client.post(_book_url(world), _booking_post(world, key))

    assert first.status_code == 303
    assert second.status_code == 409
    assert "already used for a booking with another email address" in second.content.decode()
    assert "/pay/" not in second.get("Location", "")
    assert "vera.victim@example.com" not in second.content.decode()
    assert (
        key not in second.content.decode()
    )  # the form comes back with a fresh key: resending it is a new request
    assert _counts(world) == (1, 1, 3)


@pytest.mark.django_db
def test_too_many_booking_attempts_from_one_address_are_refused_with_429(monkeypatch):
    from portals.retail import throttle

    monkeypatch.setattr(throttle, "BOOKING_LIMIT", 2)
    world = World()
    client = _client(world)
    key = _form_key(client, world)

    attempts = [
        client.post(_book_url(world), _booking_post(world, key, accept_terms=None), REMOTE_ADDR="203.0.113.7")
        for _ in range(2)
    ]
    refused = client.post(_book_url(world), _booking_post(world, key), REMOTE_ADDR="203.0.113.7")
    quote = client.post(
        _book_url(world), _booking_post(world, key, action="quote"), REMOTE_ADDR="203.0.113.7"
    )
    elsewhere = _client(world).post(
        _book_url(world), _booking_post(world, _form_key(client, world)), REMOTE_ADDR="198.51.100.9"
    )

    assert [response.status_code for response in attempts] == [400, 400]
    assert refused.status_code == 429
    assert "Too many booking attempts" in refused.content.decode()
    assert int(refused["Retry-After"]) == throttle.BOOKING_WINDOW_SECONDS
    assert quote.status_code == 200  # pricing the choice creates nothing and is not counted
    assert elsewhere.status_code == 303  # another address has its own count
    assert _counts(world) == (1, 1, 3)


@pytest.mark.django_db
def test_seats_gone_meanwhile_is_a_form_error_and_nothing_is_created():
    world = World()
    client = _client(world)
    key = _form_key(client, world)  # the page showed the departure bookable (and cached that answer)
    with tenant_context(world.tenant):
        Departure.objects.filter(pk=world.departure.pk).update(sold=18)  # sold elsewhere: 2 seats left

    response = client.post(_book_url(world), _booking_post(world, key))  # 3 seats wanted

    assert response.status_code == 409
    assert "not enough seats left on this departure" in response.content.decode()
    assert 'value="Ana Lima"' in response.content.decode()  # what was typed stays
    assert _counts(world) == (0, 0, 0)


@pytest.mark.django_db
def test_a_sold_out_departure_cannot_be_chosen():
    world = World()
    with tenant_context(world.tenant):
        Departure.objects.filter(pk=world.departure.pk).update(sold=20)
    client = _client(world)

    tour_page = client.get(f"/tours/{world.tour.slug}/").content.decode()
    response = client.post(_book_url(world), _booking_post(world, "k" * 20))

    assert "Sold out" in tour_page
    assert response.status_code == 400
    assert "cannot be booked any more" in response.content.decode()
    assert _counts(world) == (0, 0, 0)


@pytest.mark.django_db
def test_invalid_input_is_a_400_with_field_errors_and_nothing_is_created():
    world = World()
    client = _client(world)
    key = _form_key(client, world)

    response = client.post(
        _book_url(world),
        _booking_post(
            world,
            key,
            lead_email="not-an-email",
            accept_terms=None,
            traveller_1_last_name="",
        ),
    )
    nobody = client.post(_book_url(world), _booking_post(world, key, units_adult="0", units_child="0"))

    html = response.content.decode()
    assert response.status_code == 400
    assert "Enter a valid email address." in html
    assert "Please accept the booking terms to continue." in html
    assert "Give both the first and the last name, or neither." in html
    assert nobody.status_code == 400
    assert "Choose how many people are coming (at least one)." in nobody.content.decode()
    assert _counts(world) == (0, 0, 0)


@pytest.mark.django_db
def test_a_service_refusal_lands_on_the_unit_field():
    world = World()
    with tenant_context(world.tenant):
        world.tour.unit_types.filter(code="child").update(max_per_booking=None, min_per_booking=0)
        world.option.min_participants = 4
        world.option.save()
    client = _client(world)

    response = client.post(_book_url(world), _booking_post(world, _form_key(client, world)))

    assert response.status_code == 400
    assert "at least 4 participants" in response.content.decode()
    assert _counts(world) == (0, 0, 0)


@pytest.mark.django_db
def test_another_tenants_tour_is_not_reachable():
    world = World()
    other = World()
    with tenant_context(other.tenant):
        Tour.objects.filter(pk=other.tour.pk).update(slug="only-elsewhere")
        # A tour with the first tenant's slug, so the other site's booking form exists for it.
        twin = make_tour(slug=world.tour.slug)
        twin_option = make_option(twin)
        make_price_list(twin_option, make_unit_types(twin), {"adult": 7000, "child": 3000, "infant": 0})
        make_departure(twin_option)
    client = _client(world)

    assert client.get("/tours/only-elsewhere/").status_code == 404
    assert "only-elsewhere" not in client.get("/tours/").content.decode()
    # The other tenant's departure id, posted to the first tenant's form: not one of its choices.
    with tenant_context(other.tenant):
        foreign_departure = other.departure.pk
    response = client.post(_book_url(world), _booking_post(world, "k" * 20, departure=str(foreign_departure)))
    assert response.status_code == 400
    assert _counts(world) == (0, 0, 0)
    assert _counts(other) == (0, 0, 0)
