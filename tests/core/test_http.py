"""The client's address behind trusted proxies: what throttles, the audit trail and consent records count by."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import RequestFactory, override_settings

from core.http import client_ip


def _request(forwarded: str | None = None):
    extra = {"REMOTE_ADDR": "10.0.0.5"}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def _proxies(count: int):
    return override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "NUM_PROXIES": count})


def test_without_trusted_proxies_a_forwarded_header_is_ignored():
    with _proxies(0):
        assert client_ip(_request("203.0.113.7")) == "10.0.0.5"
        assert client_ip(_request()) == "10.0.0.5"


@pytest.mark.parametrize(
    ("count", "forwarded", "expected"),
    [
        (1, "203.0.113.7", "203.0.113.7"),
        # A client sending its own X-Forwarded-For cannot choose the address: the proxy appends what it saw.
        (1, "198.51.100.99, 203.0.113.7", "203.0.113.7"),
        (2, "198.51.100.99, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
        (3, "203.0.113.7", "203.0.113.7"),  # fewer hops than proxies: the first one
        (1, " , ", "10.0.0.5"),
    ],
)
def test_behind_trusted_proxies_the_address_the_outermost_saw(count, forwarded, expected):
    with _proxies(count):
        assert client_ip(_request(forwarded)) == expected
