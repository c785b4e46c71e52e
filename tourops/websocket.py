"""WebSocket routing: the tenant comes from the Host header, as for HTTP; unknown hosts are refused.

Consumers (realtime/, later) read ``scope["tenant"]`` and run every database access through
``tenant_database_sync_to_async``, which opens ``tenant_context`` around the call.
"""

from __future__ import annotations

import functools

from channels.db import database_sync_to_async

from tenants.context import tenant_context
from tenants.routing import normalise_host, tenant_for_host

websocket_urlpatterns: list = []


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
