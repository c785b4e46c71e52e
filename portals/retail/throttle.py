"""Limits on anonymous retail paths, counted per client address in the shared cache (fixed windows), so every web
process sees the same counts.

- "find my booking": a reference is 8 characters, so guessing one with a known email (or the other way round) must
  stay slow; counted per address and per reference.
- the booking form: every booking holds seats, so one address must not empty a departure with throwaway bookings;
  counted per address.
- paying: each checkout page load or payment check calls the tenant's gateway account, so one address must not run
  up its rate limits (which would open the circuit breaker for that tenant's real payers)."""

from __future__ import annotations

from django.core.cache import cache

LOOKUP_LIMIT = 10
LOOKUP_WINDOW_SECONDS = 15 * 60

BOOKING_LIMIT = 20
BOOKING_WINDOW_SECONDS = 10 * 60

PAYMENT_PAGE_LIMIT = 60
PAYMENT_PAGE_WINDOW_SECONDS = 10 * 60


def _count(key: str, window_seconds: int = LOOKUP_WINDOW_SECONDS) -> int:
    cache.add(key, 0, window_seconds)  # starts the window only if none is running
    try:
        return cache.incr(key)
    except ValueError:  # the window ended between add and incr
        cache.set(key, 1, window_seconds)
        return 1


def lookup_allowed(tenant_id, client_ip: str, reference: str) -> bool:
    """Count this attempt; False once the address or the reference has used up its attempts in the window."""
    counts = [
        _count(f"find-booking:{tenant_id}:ip:{client_ip}"),
        _count(f"find-booking:{tenant_id}:reference:{reference.strip().upper()}"),
    ]
    return max(counts) <= LOOKUP_LIMIT


def booking_allowed(tenant_id, client_ip: str) -> bool:
    """Count this booking attempt; False once the address has used up its attempts in the window."""
    return _count(f"retail-booking:{tenant_id}:ip:{client_ip}", BOOKING_WINDOW_SECONDS) <= BOOKING_LIMIT


def payment_page_allowed(tenant_id, client_ip: str) -> bool:
    """Count a load of a page that asks the gateway (checkout, confirmation, PayPal's way back)."""
    key = f"retail-payment:{tenant_id}:ip:{client_ip}"
    return _count(key, PAYMENT_PAGE_WINDOW_SECONDS) <= PAYMENT_PAGE_LIMIT
