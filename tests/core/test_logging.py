"""Manage-booking tokens and check-in codes never reach a log line, whichever logger writes the URL."""

from __future__ import annotations

import logging
import sys

import pytest
from django.test import Client

from bookings.links import manage_token
from core.logging import REDACTED, RedactSecretUrls, redact
from tenants.context import tenant_context
from tests.bookings.world import World
from tests.factories import host_of

TOKEN = ".eJwdyTEOgCAMAMC_MFNtCKW9MTW0Nhk:1uB2aQ:Xk9tq1Zt-2_hK8sG5nY"
CODE = "ABCD2345-K7QX9MPT2Z"


def _record(msg, *args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("django.request", logging.WARNING, __file__, 1, msg, args or None, exc_info)


def _filtered(record: logging.LogRecord) -> logging.LogRecord:
    assert RedactSecretUrls().filter(record) is True  # redacts, never drops
    return record


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"/booking/{TOKEN}/", f"/booking/{REDACTED}/"),
        (f"/booking/{TOKEN}/cancel/", f"/booking/{REDACTED}/cancel/"),
        (
            f"https://lisbon.example/booking/{TOKEN}/documents/0191c7a0-0000-7000-8000-000000000001/",
            f"https://lisbon.example/booking/{REDACTED}/documents/0191c7a0-0000-7000-8000-000000000001/",
        ),
        (
            f'"GET /booking/{TOKEN}/travellers/?x=1 HTTP/1.1" 404',
            f'"GET /booking/{REDACTED}/travellers/?x=1 HTTP/1.1" 404',
        ),
        (f"/check-in/{CODE}/", f"/check-in/{REDACTED}/"),
        (f"/check-in/{CODE}", f"/check-in/{REDACTED}"),
        (f"/api/v1/check-in/?token={CODE}&x=1", f"/api/v1/check-in/?token={REDACTED}&x=1"),
        ("/booking/", "/booking/"),  # "find my booking" names nothing
        ("/check-in/", "/check-in/"),
        (
            "/api/v1/bookings/0191c7a0-0000-7000-8000-000000000001/",
            "/api/v1/bookings/0191c7a0-0000-7000-8000-000000000001/",
        ),
    ],
)
def test_redact_replaces_the_secret_segment_only(text, expected):
    assert redact(text) == expected
    assert redact(expected) == expected  # redacting twice changes nothing


def test_the_filter_redacts_the_message_and_its_arguments():
    record = _filtered(_record("%s: %s", "Not Found", f"/booking/{TOKEN}/"))
    assert record.getMessage() == f"Not Found: /booking/{REDACTED}/"

    record = _filtered(_record(f"Reached /check-in/{CODE}/ with %d travellers", 2))
    assert record.getMessage() == f"Reached /check-in/{REDACTED}/ with 2 travellers"

    record = _filtered(
        logging.LogRecord("x", logging.INFO, __file__, 1, "%(path)s", ({"path": f"/booking/{TOKEN}/"},), None)
    )
    assert record.getMessage() == f"/booking/{REDACTED}/"

    class Request:  # an argument whose str() names the path, like Django's request repr
        def __str__(self):
            return f"<WSGIRequest: GET '/booking/{TOKEN}/'>"

    record = _filtered(_record("Failed %s", Request()))
    assert TOKEN not in record.getMessage() and REDACTED in record.getMessage()

    untouched = _record("Not Found: %s", "/api/v1/bookings/")
    assert _filtered(untouched).args == ("/api/v1/bookings/",)  # nothing secret: left as logged


def test_the_filter_redacts_tracebacks_and_survives_a_broken_format():
    try:
        raise LookupError(f"no booking for /booking/{TOKEN}/")
    except LookupError:
        record = _filtered(
            _record("Internal Server Error: %s", f"/booking/{TOKEN}/", exc_info=sys.exc_info())
        )
    formatted = logging.Formatter().format(record)
    assert TOKEN not in formatted and "LookupError" in formatted and REDACTED in formatted

    broken = _filtered(_record("%s %s", f"/booking/{TOKEN}/"))  # one argument short
    assert broken.args == (f"/booking/{REDACTED}/",)


@pytest.fixture
def redacting_caplog(caplog):
    redactor = RedactSecretUrls()
    caplog.handler.addFilter(redactor)
    yield caplog
    caplog.handler.removeFilter(redactor)


@pytest.mark.django_db
def test_a_404_on_a_manage_link_is_logged_without_its_token(redacting_caplog):
    world = World()
    with tenant_context(world.tenant):
        booking = world.confirmed_booking("log", adults=1)
        token = manage_token(booking)
    tampered = token[:-3] + ("xyz" if not token.endswith("xyz") else "abc")
    client = Client(HTTP_HOST=host_of(world.tenant))

    with redacting_caplog.at_level(logging.WARNING, logger="django.request"):
        assert client.get(f"/booking/{tampered}/cancel/").status_code == 404
        assert client.get(f"/booking/{tampered}/").status_code == 404

    logged = [record.getMessage() for record in redacting_caplog.records if record.name == "django.request"]
    assert logged == [f"Not Found: /booking/{REDACTED}/cancel/", f"Not Found: /booking/{REDACTED}/"]
    assert tampered not in redacting_caplog.text and token[:20] not in redacting_caplog.text
