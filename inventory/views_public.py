"""Public availability over HTTP: ``GET /api/v1/tours/<slug>/availability/?from=&to=&option=``.

Two ways in, one answer:

- ``AvailabilityFastPath`` wraps the ASGI application. For an anonymous GET (no Authorization header, no session
  cookie) on a tenant host it does the least the rules allow: tenant from the Host (process cache → Valkey →
  database, as the routing middleware does), tour id from the slug (process cache, 5 s), the tour's availability
  version and the tenant's catalogue version (one MGET), then the ready JSON bytes (from a small per-process copy
  keyed by those versions, else one GET), and sends them. A Django view on a 2-core machine tops out at
  a few hundred requests/s (measured: 300–380 req/s for a cached DRF answer); this path serves from bytes.
  On a miss it computes the answer in a worker thread (tenant context, selector) and stores the bytes under the
  versioned key, so a seat movement (which bumps the version after commit) is never followed by an old answer.
- ``availability_view`` is the DRF view for everything else (a signed-in agency booker sees the trade channel
  with its allotments) and for deployments without the wrapper.

Security the fast path keeps: only hosts the Domain table knows and tenants that are active; only published tours;
HTTPS redirect left to Django (a plain-http request when SECURE_SSL_REDIRECT is on falls through); the security
headers of the JSON API; no identity-dependent answers (those fall through to Django).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import re
import time
import uuid
import weakref
from dataclasses import dataclass
from urllib.parse import parse_qsl

import redis.asyncio
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.decorators import api_view, permission_classes, throttle_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request

from core.api import error_body
from core.errors import DomainError
from inventory.availability import MAX_RANGE_DAYS, availability, availability_json
from inventory.cache import AVAILABILITY_TTL, availability_key, availability_version_key
from inventory.search import catalogue_version, catalogue_version_key
from tenants.context import tenant_context
from tenants.permissions import partner_of
from tenants.routing import normalise_host, tenant_for_host
from tours.models import Channel, Option, Tour

PATH = re.compile(r"^/api/v1/tours/(?P<slug>[-a-zA-Z0-9_]{1,120})/availability/$")
_OPTION_CODE = re.compile(r"^[-a-zA-Z0-9_]{1,50}$")
DEFAULT_DAYS = 31
# Per-process memory of host → tenant and slug → tour. Short: a suspended tenant or a moved domain is honoured
# by every worker within these seconds (the answers themselves are public availability).
_LOCAL_TTL = 5.0


# --- the request, parsed the same way on both paths -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AvailabilityQuery:
    start: dt.date
    end: dt.date
    option_code: str  # "" = every option

    @property
    def key_parts(self) -> tuple[str, ...]:
        return ("json", self.option_code or "-", self.start.isoformat(), self.end.isoformat())


# Sales are a few years ahead at most; bounding the dates keeps date arithmetic far from year 9999.
_EARLIEST, _LATEST = dt.date(2000, 1, 1), dt.date(2999, 12, 31)


def _date(value: str) -> dt.date | None:
    if len(value) != 10:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return None
    return day if _EARLIEST <= day <= _LATEST else None


def parse_query(params: dict[str, str], today: dt.date) -> AvailabilityQuery:
    """``from`` (default today), ``to`` (default from + 30 days), ``option`` (a code). Raises DomainError."""
    fields: dict[str, list[str]] = {}
    raw_from, raw_to, option_code = params.get("from", ""), params.get("to", ""), params.get("option", "")
    start = _date(raw_from) if raw_from else today
    if start is None:
        fields["from"] = ["A date in the form YYYY-MM-DD, between 2000 and 2999."]
    end = _date(raw_to) if raw_to else (start or today) + dt.timedelta(days=DEFAULT_DAYS - 1)
    if end is None:
        fields["to"] = ["A date in the form YYYY-MM-DD, between 2000 and 2999."]
    elif start is not None and end < start:
        fields["to"] = ["Must be on or after the start date."]
    elif start is not None and (end - start).days >= MAX_RANGE_DAYS:
        fields["to"] = [f"The range may span at most {MAX_RANGE_DAYS} days."]
    if option_code and not _OPTION_CODE.match(option_code):
        fields["option"] = ["An option code (letters, digits, hyphens)."]
    if fields:
        raise DomainError(
            "The availability request is invalid.", code="invalid_availability_request", fields=fields
        )
    return AvailabilityQuery(start, end, option_code)


# --- computing the answer (both paths) --------------------------------------------------------------------------


class TourNotFound(DomainError):
    status = 404
    code = "not_found"


def _published_tour(slug: str) -> Tour:
    tour = Tour.objects.filter(slug=slug, status=Tour.Status.PUBLISHED).first()
    if tour is None:
        raise TourNotFound("No such tour.")
    return tour


def _option(tour: Tour, code: str) -> Option | None:
    if not code:
        return None
    option = Option.objects.filter(tour=tour, code=code, is_active=True).first()
    if option is None:
        raise DomainError(
            "The availability request is invalid.",
            code="invalid_availability_request",
            fields={"option": [f"This tour has no option {code!r}."]},
        )
    return option


def _raw_client():
    return cache.client.get_client(write=True)


def render_public_availability(
    tenant_id: uuid.UUID, slug: str, query: AvailabilityQuery
) -> tuple[uuid.UUID, bytes]:
    """Retail availability as JSON bytes, stored under the versioned key for the fast path. (tour id, bytes)."""
    with tenant_context(tenant_id):
        tour = _published_tour(slug)
        # Read the version first: a movement committing while we compute moves readers to a newer key.
        key = cache.make_key(
            availability_key(tenant_id, tour.pk, f"c{catalogue_version(tenant_id)}", *query.key_parts)
        )
        items = availability(
            tour, query.start, query.end, Channel.RETAIL, option=_option(tour, query.option_code)
        )
        body = availability_json(tour, items, query.start, query.end)
    # Raw bytes, not pickled: the fast path sends them as they are.
    # Between half and all of the TTL: answers cached together (a warm-up, a busy minute) must not all expire in
    # the same few seconds, or their recomputations pile up (measured: p99 250 ms at 470 req/s with a 10 s spread).
    _raw_client().set(key, body, ex=random.randint(AVAILABILITY_TTL // 2, AVAILABILITY_TTL))
    return tour.pk, body


# --- the DRF view --------------------------------------------------------------------------------------------


_EXAMPLE = {
    "tour": "lisbon-old-town",
    "from": "2030-03-01",
    "to": "2030-03-31",
    "departures": [
        {
            "departure": "01a2180c-0000-7000-8000-000000000001",
            "option": "01a2180c-0000-7000-8000-0000000000aa",
            "starts_at": "2030-03-02T09:00:00Z",
            "local_date": "2030-03-02",
            "local_time": "09:00",
            "capacity": 30,
            "seats_left": 12,
            "status": "limited",
            "price_from": {"amount": 4500, "currency": "EUR", "display": "45.00 EUR"},
        }
    ],
}


@extend_schema(
    tags=["catalogue"],
    summary="Availability of a tour's departures over a date range",
    description=(
        "Per departure (cancelled ones left out): status available / limited (under the tenant's threshold of "
        "seats left) / sold_out / closed (closed to sales, past cut-off or in the past), seats left for the asking "
        "channel (retail; for a signed-in agency booker, trade plus its own allotment) and the price from. "
        "Public; cached, and never older than the last seat movement."
    ),
    parameters=[
        OpenApiParameter("from", OpenApiTypes.DATE, description="First local date (default today)."),
        OpenApiParameter(
            "to",
            OpenApiTypes.DATE,
            description=f"Last local date (default from + 30 days; at most {MAX_RANGE_DAYS} days).",
        ),
        OpenApiParameter("option", str, description="Only this option (its code)."),
    ],
    responses={
        200: OpenApiResponse(OpenApiTypes.OBJECT, examples=[OpenApiExample("A month", value=_EXAMPLE)]),
        400: OpenApiResponse(OpenApiTypes.OBJECT, description="Invalid dates or option, with field errors."),
        404: OpenApiResponse(OpenApiTypes.OBJECT, description="No published tour with this slug."),
    },
)
@api_view(["GET"])
@permission_classes([AllowAny])
@throttle_classes([])  # public, cached reads; throttling them would cost more than answering
def availability_view(request: Request, slug: str):
    if getattr(request, "tenant", None) is None:  # a platform host: no catalogue here
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    try:
        query = parse_query(request.query_params, timezone.localdate())
        partner = partner_of(request)
        if partner is None:
            _, body = render_public_availability(request.tenant.pk, slug, query)
            return HttpResponse(body, content_type="application/json")
        tour = _published_tour(slug)
        items = availability(
            tour,
            query.start,
            query.end,
            Channel.TRADE,
            agency=partner.agency,
            option=_option(tour, query.option_code),
        )
        response = HttpResponse(
            availability_json(tour, items, query.start, query.end), content_type="application/json"
        )
        response["Cache-Control"] = "private, no-store"
        return response
    except DomainError as error:
        return JsonResponse(error_body(error.code, error.message, error.fields), status=error.status)


# --- the ASGI fast path -----------------------------------------------------------------------------------------


class _TTLCache:
    """A tiny per-process map with expiry: the hot path must not pay a network round trip for these."""

    def __init__(self, ttl: float, max_entries: int = 10_000):
        self.ttl = ttl
        self.max_entries = max_entries
        self._items: dict[object, tuple[float, object]] = {}

    def get(self, key: object) -> object | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] < time.monotonic():
            self._items.pop(key, None)
            return None
        return item[1]

    def set(self, key: object, value: object) -> None:
        if len(self._items) >= self.max_entries:
            self._items.clear()
        self._items[key] = (time.monotonic() + self.ttl, value)


def _security_headers() -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-type", b"application/json"),
        (b"cache-control", b"no-cache"),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", settings.SECURE_REFERRER_POLICY.encode()),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]
    if settings.SECURE_HSTS_SECONDS:
        value = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            value += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            value += "; preload"
        headers.append((b"strict-transport-security", value.encode()))
    return headers


def _closing(function):
    """Run ``function`` in a worker thread and give back its database connection afterwards (to the pool, or
    closed): executor threads outlive the call and must not each keep a connection."""

    def run(*args):
        try:
            return function(*args)
        finally:
            connections.close_all()

    return run


def _query_params(raw: bytes) -> dict[str, str] | None:
    try:
        return dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True, max_num_fields=10))
    except ValueError:  # more fields than any availability request has: Django's view answers it
        return None


class AvailabilityFastPath:
    """ASGI middleware: answers anonymous availability GETs from cached bytes, passes everything else on."""

    def __init__(self, app):
        self.app = app
        self._tenants = _TTLCache(_LOCAL_TTL)
        self._tours = _TTLCache(_LOCAL_TTL)
        self._redis: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        # Short-lived: the versions in the key cover seat and catalogue changes, but not time (a cut-off passing),
        # which only the TTL bounds; 5 s adds little to the 60 s.
        self._bodies = _TTLCache(5.0, max_entries=5_000)
        self._flights: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._headers: list[tuple[bytes, bytes]] | None = None

    def _async_redis(self):
        # One client per event loop: a redis.asyncio connection belongs to the loop that opened it.
        loop = asyncio.get_running_loop()
        client = self._redis.get(loop)
        if client is None:
            # A bounded pool that waits for a free connection, rather than failing, under a burst.
            pool = redis.asyncio.BlockingConnectionPool.from_url(
                settings.CACHES["default"]["LOCATION"], max_connections=64, timeout=5
            )
            client = self._redis[loop] = redis.asyncio.Redis(connection_pool=pool)
        return client

    def _wants_django(self, scope, headers: dict[bytes, bytes]) -> bool:
        if b"authorization" in headers or settings.SESSION_COOKIE_NAME.encode() in headers.get(
            b"cookie", b""
        ):
            return True  # identity-dependent answers (trade channel, allotments) go through authentication
        if settings.SECURE_SSL_REDIRECT and scope.get("scheme") != "https":
            proxy = settings.SECURE_PROXY_SSL_HEADER
            if not proxy:
                return True  # Django redirects to https
            header = proxy[0].removeprefix("HTTP_").lower().replace("_", "-").encode()
            return headers.get(header) != proxy[1].encode()
        return False

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        match = PATH.match(scope["path"])
        if match is None:
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self._wants_django(scope, headers):
            return await self.app(scope, receive, send)
        host = normalise_host(headers.get(b"host", b"").decode("latin-1"))
        if not host or host in settings.PLATFORM_HOSTS:
            return await self.app(scope, receive, send)
        tenant_id = self._tenants.get(host)
        if tenant_id is None:
            tenant = await sync_to_async(_closing(tenant_for_host), thread_sensitive=False)(host)
            if tenant is None or not tenant.is_active:
                return await self.app(scope, receive, send)  # Django answers the 404 for unknown hosts
            tenant_id = tenant.pk
            self._tenants.set(host, tenant_id)
        slug = match["slug"]
        params = _query_params(scope.get("query_string", b""))
        if params is None:
            return await self.app(scope, receive, send)
        try:
            query = parse_query(params, timezone.localdate())
        except DomainError as error:
            return await self._send_error(send, error, scope)
        redis = self._async_redis()
        tour_id = self._tours.get((tenant_id, slug))
        flight = None
        if tour_id is not None:
            version, catalogue = await redis.mget(
                cache.make_key(availability_version_key(tenant_id, tour_id)),
                cache.make_key(catalogue_version_key(tenant_id)),
            )
            if version is not None and catalogue is not None:
                parts = ":".join(query.key_parts)
                key = cache.make_key(f"avail:{tenant_id}:{tour_id}:{int(version)}:c{int(catalogue)}:{parts}")
                # The versions just read are in the key: a local copy is as fresh as the one in Valkey.
                body = self._bodies.get(key)
                if body is None:
                    body = await redis.get(key)
                if body is not None:
                    self._bodies.set(key, body)
                    return await self._send(send, 200, body, scope)
                flight = (tenant_id, tour_id, int(version), int(catalogue), query)
        try:
            tour_id, body = await self._render(flight, tenant_id, slug, query)
        except DomainError as error:
            return await self._send_error(send, error, scope)
        self._tours.set((tenant_id, slug), tour_id)
        return await self._send(send, 200, body, scope)

    async def _render(self, flight: tuple | None, tenant_id: uuid.UUID, slug: str, query: AvailabilityQuery):
        """Compute on a miss. Concurrent misses of one answer at one version share one computation (a version
        bumped meanwhile makes a new flight, so nobody gets an answer older than the version they read)."""
        render = sync_to_async(_closing(render_public_availability), thread_sensitive=False)
        if flight is None:
            return await render(tenant_id, slug, query)
        loop = asyncio.get_running_loop()
        flights = self._flights.setdefault(loop, {})
        future = flights.get(flight)
        if future is None:
            future = flights[flight] = asyncio.ensure_future(render(tenant_id, slug, query))
            future.add_done_callback(lambda _: flights.pop(flight, None))
        return await asyncio.shield(future)

    async def _send_error(self, send, error: DomainError, scope) -> None:
        body = json.dumps(error_body(error.code, error.message, error.fields)).encode()
        await self._send(send, error.status, body, scope)

    async def _send(self, send, status: int, body: bytes, scope) -> None:
        if self._headers is None:
            self._headers = _security_headers()
        headers = [*self._headers, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
