"""Availability over HTTP: the ASGI fast path (cached bytes, invalidated by seat movements, errors, what it leaves
to Django) and the DRF view (anonymous retail, an agency booker's trade answer with its allotment).

This module is also the URLconf of its tests (``ROOT_URLCONF`` points here) until the lead wires the route.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from django.core.asgi import get_asgi_application
from django.db import connections
from django.db.models import F
from django.test import override_settings
from django.urls import include, path
from django.utils import timezone

from inventory import views_public
from inventory.cache import bump_availability
from inventory.models import Allotment, Departure
from inventory.views_public import AvailabilityFastPath, availability_view, parse_query
from partners.models import PartnerUser
from tenants.context import tenant_context
from tests.catalogue import make_agency, make_departure, make_option, make_tour
from tests.factories import host_of, make_tenant, make_user, obtain_tokens
from tests.races import run_before, wait_for

urlpatterns = [
    path("api/v1/tours/<slug:slug>/availability/", availability_view, name="tour-availability"),
    path("api/v1/", include("tourops.api_urls")),
]

URL = "/api/v1/tours/{slug}/availability/"
QUERY = "from=2030-03-01&to=2030-03-31"


def at(day: int) -> dt.datetime:
    return dt.datetime(2030, 3, day, 9, tzinfo=dt.UTC)


async def request(
    app, host: str, path_: str, query: str = QUERY, headers: list | None = None
) -> tuple[int, dict, bytes]:
    """One request through an ASGI app."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path_,
        "raw_path": path_.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", host.encode()), *(headers or [])],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    messages: list[dict] = []
    received = []

    async def receive():
        if received:  # the body was read: the client stays connected until the response is sent
            await asyncio.Event().wait()
        received.append(True)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        messages.append(message)

    await app(scope, receive, send)
    start = messages[0]
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, body


def call(
    app, host: str, path_: str, query: str = QUERY, headers: list | None = None
) -> tuple[int, dict, bytes]:
    """One request on a fresh event loop (as a uvicorn worker would run it)."""
    return asyncio.run(request(app, host, path_, query, headers))


@pytest.fixture
def app(settings):
    settings.ROOT_URLCONF = __name__
    # Django's ASGI handler runs each request's sync part on a thread of its own; with persistent connections
    # (CONN_MAX_AGE) those would outlive the threads and keep the test database busy. Close them per request.
    database = connections.settings["default"]
    saved, database["CONN_MAX_AGE"] = database["CONN_MAX_AGE"], 0
    yield AvailabilityFastPath(get_asgi_application())
    database["CONN_MAX_AGE"] = saved


@pytest.fixture
def catalogue(transactional_db):
    tenant = make_tenant()
    with tenant_context(tenant):
        tour = make_tour()
        shared, private = make_option(tour), make_option(tour, code="private")
        departures = [make_departure(shared, capacity=10, starts_at=at(day)) for day in (2, 3)]
        make_departure(private, capacity=4, starts_at=at(4))
        draft = make_tour(status="draft")
        make_departure(make_option(draft), capacity=10, starts_at=at(2))
    return tenant, tour, departures, draft


@pytest.mark.django_db(transaction=True)
def test_fast_path_serves_cached_bytes_until_a_seat_moves(app, catalogue):
    tenant, tour, departures, _ = catalogue
    host, url = host_of(tenant), URL.format(slug=tour.slug)

    status, headers, body = call(app, host, url)
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    assert headers["x-content-type-options"] == "nosniff"
    payload = json.loads(body)
    assert [d["seats_left"] for d in payload["departures"]] == [10, 10, 4]
    assert payload["departures"][0]["status"] == "available"

    with tenant_context(tenant):  # a change without a bump: the cached bytes still answer (TTL-bounded)
        Departure.objects.filter(pk=departures[0].pk).update(sold=F("sold") + 7)
    assert call(app, host, url)[2] == body

    with tenant_context(tenant):  # a seat movement, as the services make it: update + bump, then commit
        Departure.objects.filter(pk=departures[0].pk).update(held=F("held") + 1)
        bump_availability(tenant.pk, tour.pk)
    payload = json.loads(call(app, host, url)[2])
    assert [(d["seats_left"], d["status"]) for d in payload["departures"]][0] == (2, "limited")

    only_private = json.loads(call(app, host, url, QUERY + "&option=private")[2])
    assert [d["seats_left"] for d in only_private["departures"]] == [4]


@pytest.mark.django_db(transaction=True)
def test_fast_path_errors_and_what_it_leaves_to_django(app, catalogue):
    tenant, tour, _, draft = catalogue
    host, url = host_of(tenant), URL.format(slug=tour.slug)

    status, _, body = call(app, host, url, "from=2030-03-31&to=2030-03-01")
    assert status == 400
    assert json.loads(body)["error"]["code"] == "invalid_availability_request"
    assert "to" in json.loads(body)["error"]["fields"]

    status, _, body = call(app, host, url, QUERY + "&option=nope")
    assert (status, list(json.loads(body)["error"]["fields"])) == (400, ["option"])

    status, _, body = call(app, host, URL.format(slug=draft.slug))
    assert (status, json.loads(body)["error"]["code"]) == (404, "not_found")

    status, headers, _ = call(app, "unknown.testserver", url)  # Django's routing answers unknown hosts
    assert status == 404 and headers["content-type"].startswith("text/html")

    other = make_tenant()  # another tenant's host does not see this tour
    assert call(app, host_of(other), url)[0] == 404

    many = "&".join(f"p{n}=1" for n in range(11))  # more fields than the fast path parses: Django answers
    assert call(app, host, url, f"{QUERY}&{many}")[0] == 200
    status, _, body = call(app, host, url, "from=9999-12-20")
    assert (status, list(json.loads(body)["error"]["fields"])) == (400, ["from"])

    with override_settings(SECURE_SSL_REDIRECT=True):  # plain http goes to Django, which redirects
        status, headers, _ = call(AvailabilityFastPath(get_asgi_application()), host, url)
        assert (status, headers["location"]) == (301, f"https://{host}{url}?{QUERY}")


@pytest.mark.django_db(transaction=True)
def test_concurrent_misses_of_one_answer_share_one_computation(app, catalogue, monkeypatch):
    tenant, tour, departures, _ = catalogue
    host, url = host_of(tenant), URL.format(slug=tour.slug)
    computed = []
    compute = views_public.render_public_availability

    def counted_compute(*args):
        computed.append(args)
        return compute(*args)

    monkeypatch.setattr(views_public, "render_public_availability", counted_compute)

    async def burst(count: int) -> list:
        return await asyncio.gather(*(request(app, host, url) for _ in range(count)))

    assert call(app, host, url)[0] == 200  # the first one also learns the tour id
    with tenant_context(tenant):
        Departure.objects.filter(pk=departures[1].pk).update(sold=F("sold") + 3)
        bump_availability(tenant.pk, tour.pk)
    asking = []  # requests of the burst that missed the cache and ask for the computed answer
    run_before(monkeypatch, AvailabilityFastPath, "_render", lambda *args: asking.append(args), once=False)
    run_before(  # the burst's (first) computation: the other requests arrive while it computes
        monkeypatch,
        views_public,
        "render_public_availability",
        lambda *args: wait_for(lambda: len(asking) == 12, lambda: f"12 requests asking, not {len(asking)}"),
    )
    responses = asyncio.run(burst(12))
    assert len(computed) == 2
    assert {status for status, _, _ in responses} == {200}
    assert len({body for _, _, body in responses}) == 1
    assert [d["seats_left"] for d in json.loads(responses[0][2])["departures"]] == [10, 7, 4]


def test_parse_query_defaults_and_limits():
    today = dt.date(2030, 3, 10)
    query = parse_query({}, today)
    assert (query.start, query.end, query.option_code) == (today, dt.date(2030, 4, 9), "")
    with pytest.raises(Exception) as error:
        parse_query({"from": "2030-3-1", "to": "2031-01-01", "option": "a b"}, today)
    assert set(error.value.fields) == {"from", "option"}


@pytest.mark.django_db(transaction=True)
def test_an_agency_booker_gets_the_trade_answer_with_its_allotment(app, catalogue, client, settings):
    tenant, tour, departures, _ = catalogue
    host, url = host_of(tenant), URL.format(slug=tour.slug)
    user = make_user()
    with tenant_context(tenant):
        agency = make_agency()
        PartnerUser.objects.create(user=user, agency=agency)
        Allotment.objects.create(
            agency=agency, departure=departures[0], seats=3, release_at=timezone.now() + dt.timedelta(days=30)
        )
        Departure.objects.filter(pk=departures[0].pk).update(allotted=3)
    access = obtain_tokens(client, tenant, user)["access"]

    anonymous = client.get(url + "?" + QUERY, HTTP_HOST=host)
    assert anonymous.status_code == 200
    assert [d["seats_left"] for d in anonymous.json()["departures"]] == [7, 10, 4]

    signed_in = client.get(url + "?" + QUERY, HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {access}")
    assert signed_in.status_code == 200
    assert signed_in["Cache-Control"] == "private, no-store"
    assert [d["seats_left"] for d in signed_in.json()["departures"]] == [10, 10, 4]

    # Through the fast path the bearer token makes it step aside: Django authenticates and answers for the agency.
    status, _, body = call(app, host, url, headers=[(b"authorization", f"Bearer {access}".encode())])
    assert status == 200
    assert [d["seats_left"] for d in json.loads(body)["departures"]] == [10, 10, 4]

    bad = client.get(url + "?from=yesterday", HTTP_HOST=host)
    assert bad.status_code == 400
    assert bad.json()["error"]["fields"] == {
        "from": ["A date in the form YYYY-MM-DD, between 2000 and 2999."]
    }
