"""Who is asking: the client's address, as the throttles, the audit trail and consent records see it."""

from __future__ import annotations

from django.conf import settings


def client_ip(request) -> str:
    """The client's address. Behind ``NUM_PROXIES`` trusted proxies (the same setting DRF's throttles read) it is
    the address the outermost of them saw: that many entries from the right of ``X-Forwarded-For``, which a
    client cannot forge past our own proxies. Without proxies, or without the header, ``REMOTE_ADDR``."""
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies <= 0 or not forwarded:
        return remote
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    return hops[-min(proxies, len(hops))] if hops else remote
