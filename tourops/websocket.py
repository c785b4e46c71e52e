"""WebSocket routing: the tenant comes from the Host header, as for HTTP; unknown hosts are refused.

Consumers (realtime/, later) read ``scope["tenant"]`` and run every database access through
``tenant_database_sync_to_async``, which opens ``tenant_context`` around the call.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser

from tenants.context import tenant_context
from tenants.routing import normalise_host, tenant_for_host

websocket_urlpatterns: list = []


class SameOriginMiddleware:
    """Browsers send cookies with a WebSocket handshake from any page, so a page elsewhere could otherwise open a
    socket as the signed-in user (cross-site WebSocket hijacking). A handshake carrying an ``Origin`` must come
    from the same host (and port) it connects to; clients without one (not browsers) pass and authenticate by
    other means. (Channels' AllowedHostsOriginValidator does not help: ALLOWED_HOSTS is "*" here.)"""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers") or [])
        origin = headers.get(b"origin", b"").decode("latin-1")
        host = headers.get(b"host", b"").decode("latin-1").lower()
        if origin and (origin == "null" or urlsplit(origin).netloc.lower() != host):
            await send({"type": "websocket.close", "code": 4403})
            return
        return await self.app(scope, receive, send)


class TenantWebSocketMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers") or [])
        host = normalise_host(headers.get(b"host", b"").decode("latin-1"))
        tenant = await database_sync_to_async(tenant_for_host)(host) if host else None
        if tenant is None or not tenant.is_active:
            await send({"type": "websocket.close", "code": 4404})
            return
        return await self.app({**scope, "tenant": tenant}, receive, send)


def tenant_database_sync_to_async(func):
    """Like ``database_sync_to_async``, inside the tenant context of the consumer's scope (first argument)."""

    @functools.wraps(func)
    def run(consumer, *args, **kwargs):
        with tenant_context(consumer.scope["tenant"]):
            return func(consumer, *args, **kwargs)

    return database_sync_to_async(run)


def _member_here(user, tenant) -> bool:
    from types import SimpleNamespace

    from accounts.backends import may_sign_in_here

    with tenant_context(tenant):
        return may_sign_in_here(user, SimpleNamespace(tenant=tenant, is_platform=False))


class HostBoundUserMiddleware:
    """As for HTTP (accounts.middleware.HostBoundSessionMiddleware): the session's user counts only where they are
    an active member of the host's tenant; anywhere else the socket is anonymous."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        signed_in = user is not None and user.is_authenticated
        if signed_in and not await database_sync_to_async(_member_here)(user, scope["tenant"]):
            scope = {**scope, "user": AnonymousUser()}
        return await self.app(scope, receive, send)


def websocket_application(urlpatterns=None):
    """The WebSocket stack: same-origin check, tenant from the Host, session user, then the consumer's route."""
    from channels.auth import AuthMiddlewareStack
    from channels.routing import URLRouter

    return SameOriginMiddleware(
        TenantWebSocketMiddleware(
            AuthMiddlewareStack(
                HostBoundUserMiddleware(
                    URLRouter(websocket_urlpatterns if urlpatterns is None else urlpatterns)
                )
            )
        )
    )
