"""Host name → tenant, cached in Valkey; invalidated when a tenant or domain changes."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache

from tenants.models import Domain, Tenant

_TTL = 300
_MISS = "-"


def normalise_host(raw_host: str) -> str:
    host = raw_host.strip().lower()
    if host.startswith("["):  # IPv6 literal: never a tenant host
        return host
    return host.rsplit(":", 1)[0] if ":" in host else host


def _key(host: str) -> str:
    return f"tenancy:host:{host}"


def tenant_for_host(host: str) -> Tenant | None:
    cached = cache.get(_key(host))
    if cached == _MISS:
        return None
    if cached is not None:
        return cached
    domain = Domain.objects.select_related("tenant").filter(host=host).first()
    tenant = domain.tenant if domain else None
    cache.set(_key(host), tenant if tenant is not None else _MISS, _TTL if tenant else 30)
    return tenant


def forget_hosts(hosts: list[str]) -> None:
    cache.delete_many([_key(host) for host in hosts])


def public_base_url(tenant: Tenant) -> str:
    """Scheme, primary host and port of the tenant's site, for links made outside a request (emails, PDFs)."""
    host = tenant.domains.filter(is_primary=True).values_list("host", flat=True).first()
    if host is None:
        host = tenant.domains.order_by("pk").values_list("host", flat=True).first()
    scheme = "https" if settings.TLS_ENABLED else "http"
    port = settings.PUBLIC_PORT
    default = "443" if scheme == "https" else "80"
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")
