"""Limits on "find my booking": a reference is 8 characters, so guessing one with a known email (or the other way
round) must stay slow. Counted per client address and per reference in the shared cache (fixed windows), so every
web process sees the same counts."""

from __future__ import annotations

from django.core.cache import cache

LOOKUP_LIMIT = 10
LOOKUP_WINDOW_SECONDS = 15 * 60


def _count(key: str) -> int:
    cache.add(key, 0, LOOKUP_WINDOW_SECONDS)  # starts the window only if none is running
    try:
        return cache.incr(key)
    except ValueError:  # the window ended between add and incr
        cache.set(key, 1, LOOKUP_WINDOW_SECONDS)
        return 1


def lookup_allowed(tenant_id, client_ip: str, reference: str) -> bool:
    """Count this attempt; False once the address or the reference has used up its attempts in the window."""
    counts = [
        _count(f"find-booking:{tenant_id}:ip:{client_ip}"),
        _count(f"find-booking:{tenant_id}:reference:{reference.strip().upper()}"),
    ]
    return max(counts) <= LOOKUP_LIMIT
