"""Check-in with the voucher's signed token: once per traveller, only for this tenant's confirmed bookings."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from bookings import services
from bookings.services import TravellerDetails, checkin
from core.errors import DomainError
from tenants.context import tenant_context
from tests.accounts.helpers import client_for
from tests.backoffice.conftest import signed_in
from tests.bookings.world import LEAD, World
from tests.factories import host_of, make_tenant

pytestmark = pytest.mark.django_db


def _confirmed_with_travellers(world):
    hold = world.hold("h", {"adult": 2}, agency=world.agency)
    booking = services.create_booking(
        holds=[hold],
        lead=LEAD,
        channel="trade",
        language="en",
        agency=world.agency,
        on_account=True,
        travellers=[TravellerDetails("adult", "Ana", "Lima"), TravellerDetails("adult", "Rui", "Lima")],
    )
    return services.confirm_booking(booking)


def _ana_and_rui(booking):
    # By name: ids made in the same millisecond (UUIDv7) need not sort in the order they were made.
    by_name = {traveller.first_name: traveller for traveller in booking.travellers.all()}
    return by_name["Ana"], by_name["Rui"]


def test_a_scan_checks_everyone_in_once():
    world = World()
    with tenant_context(world.tenant):
        booking = _confirmed_with_travellers(world)
        token = checkin.check_in_token(booking)

        checked = checkin.check_in(token)

        assert len(checked) == 2 and all(t.checked_in_at for t in checked)
        with pytest.raises(DomainError) as again:
            checkin.check_in(token)
        assert again.value.code == "already_checked_in" and "Everyone" in again.value.message


def test_everyone_after_one_by_one_checks_in_only_those_not_yet_in():
    world = World()
    with tenant_context(world.tenant):
        booking = _confirmed_with_travellers(world)
        token = checkin.check_in_token(booking)
        ana, rui = _ana_and_rui(booking)
        checkin.check_in(token, [str(ana.pk)])
        ana.refresh_from_db()

        checked = checkin.check_in(token)

        assert [t.pk for t in checked] == [rui.pk]
        assert booking.travellers.get(pk=ana.pk).checked_in_at == ana.checked_in_at  # her time is kept
        assert booking.travellers.get(pk=rui.pk).checked_in_at is not None
        with pytest.raises(DomainError) as again:
            checkin.check_in(token, [str(ana.pk)])  # naming one who is in is still refused, by name
        assert again.value.code == "already_checked_in" and "Ana Lima" in again.value.message


def test_travellers_can_be_checked_in_one_by_one():
    world = World()
    with tenant_context(world.tenant):
        booking = _confirmed_with_travellers(world)
        token = checkin.check_in_token(booking)
        ana, rui = _ana_and_rui(booking)
        assert [t.pk for t in checkin.check_in(token, [str(ana.pk)])] == [ana.pk]
        assert [t.pk for t in checkin.check_in(token, [str(rui.pk)])] == [rui.pk]


def test_tampered_foreign_and_unconfirmed_tokens_are_refused():
    world = World()
    with tenant_context(world.tenant):
        booking = _confirmed_with_travellers(world)
        token = checkin.check_in_token(booking)
        pending = services.create_booking(holds=[world.hold("p")], lead=LEAD, channel="retail", language="en")
        for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "not-a-token"):
            with pytest.raises(DomainError) as refused:
                checkin.check_in(bad)
            assert refused.value.code == "invalid_token"
        with pytest.raises(DomainError) as refused:
            checkin.check_in(checkin.check_in_token(pending))
        assert refused.value.code == "not_confirmed"
    with tenant_context(make_tenant()), pytest.raises(DomainError) as foreign:
        checkin.check_in(token)
    assert foreign.value.code == "invalid_token"


# --- the codes themselves ---------------------------------------------------------------------------------------


def test_the_code_is_short_stable_and_typed_in_any_case():
    world = World()
    with tenant_context(world.tenant):
        booking = _confirmed_with_travellers(world)
        token = checkin.check_in_token(booking)
        assert token == checkin.check_in_token(booking)  # a reprinted voucher shows the same code
        assert len(token) == checkin.TOKEN_LENGTH and token.startswith(f"{booking.reference}-")
        typed = f" {token[:4].lower()} {token[4:].lower().replace('-', ' ')} "
        assert checkin.check_in_sheet(typed).booking.pk == booking.pk
        assert checkin.check_in_url(booking).endswith(f"/check-in/{token}/")


# --- the guides' page -----------------------------------------------------------------------------------------


def _page_world():
    world = World()
    with tenant_context(world.tenant):
        booking = _confirmed_with_travellers(world)
        token = checkin.check_in_token(booking)
    return world, booking, token


def _csrf(client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.content[:300]
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)


def test_the_page_sends_anonymous_visitors_to_sign_in_and_shows_them_nobody():
    world, booking, token = _page_world()
    client = client_for(host_of(world.tenant))
    path = f"/check-in/{token}/"

    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={quote(path)}"
    assert "Lima" not in response.content.decode()
    assert client.post(path).status_code in (302, 403)
    with tenant_context(world.tenant):
        assert not booking.travellers.filter(checked_in_at__isnull=False).exists()


def test_a_guide_ticks_who_is_here_and_checks_them_in_with_the_form():
    world, booking, token = _page_world()
    _, signed = signed_in(world.tenant, "guide")
    client = client_for(host_of(world.tenant), enforce_csrf_checks=True)
    client.cookies = signed.cookies  # the same session, now with CSRF checks on
    path = f"/check-in/{token}/"
    with tenant_context(world.tenant):
        ana, rui = _ana_and_rui(booking)

    page = client.get(path)
    html = page.content.decode()
    assert page.status_code == 200 and booking.reference in html and "Ana Lima" in html
    assert {"private", "no-store"} <= set(page["Cache-Control"].replace(" ", "").split(","))
    assert page["Referrer-Policy"] == "same-origin"
    assert client.post(path, {"travellers": [str(ana.pk)]}).status_code == 403  # no CSRF token

    done = client.post(path, {"travellers": [str(ana.pk)], "csrfmiddlewaretoken": _csrf(client, path)})
    assert done.status_code == 302 and done["Location"] == path
    after = client.get(path).content.decode()
    assert "Checked in: Ana Lima." in after
    with tenant_context(world.tenant):
        assert [t.pk for t in booking.travellers.filter(checked_in_at__isnull=False)] == [ana.pk]

    again = client.post(path, {"travellers": [str(ana.pk)], "csrfmiddlewaretoken": _csrf(client, path)})
    assert again.status_code == 409 and "Already checked in: Ana Lima." in again.content.decode()
    client.post(path, {"travellers": [str(rui.pk)], "csrfmiddlewaretoken": _csrf(client, path)})
    assert "Everyone on this booking is checked in." in client.get(path).content.decode()


def test_the_page_refuses_roles_without_check_in_and_explains_bad_codes():
    world, booking, token = _page_world()
    _, read_only = signed_in(world.tenant, "read_only")
    assert read_only.get(f"/check-in/{token}/").status_code == 403

    _, guide = signed_in(world.tenant, "guide")
    forged = guide.get(f"/check-in/{token[:-1]}{'A' if token[-1] != 'A' else 'B'}/")
    assert forged.status_code == 400 and "not a valid voucher" in forged.content.decode()
    assert "Lima" not in forged.content.decode()

    typed = guide.post("/check-in/", {"code": f" {token.lower()} "})
    assert typed.status_code == 302 and typed["Location"] == f"/check-in/{token.upper()}/"
