from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.http import HttpResponseNotFound, JsonResponse
from django.urls import Resolver404, resolve

from core.health import health_report
from tenants.context import tenant_bound, tenant_context
from tenants.routing import normalise_host, tenant_for_host


class HealthCheckMiddleware:
    """``/healthz`` on every host, before routing: load balancers probe by IP or any name."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == "/healthz":
            report = health_report()
            return JsonResponse(report, status=200 if report["ok"] else 503)
        return self.get_response(request)


class TenantRoutingMiddleware:
    """Route by the Host header: a platform host, a tenant's domain, or 404 with nothing about any tenant.

    This is the host validation of the app (``ALLOWED_HOSTS`` is "*" because the Domain table is the list).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        host = normalise_host(request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME", ""))
        request.tenant = None
        request.is_platform = host in settings.PLATFORM_HOSTS
        if request.is_platform:
            request.urlconf = settings.PLATFORM_URLCONF
            return self.get_response(request)
        tenant = tenant_for_host(host) if host else None
        if tenant is None or not tenant.is_active:
            return HttpResponseNotFound(
                b"<!doctype html><title>Not found</title><h1>Not found</h1><p>This site does not exist.</p>",
                content_type="text/html; charset=utf-8",
            )
        request.tenant = tenant
        return self.get_response(request)


def outside_request_transaction(view):
    """Mark a view that calls a payment gateway: it runs with its tenant current but not inside the request's
    transaction, and opens a short ``tenant_context`` around each database step itself, so no row lock is held
    while the gateway answers (record the attempt, commit, call, record the outcome)."""
    view.tenant_request_transaction = False
    return view


def _in_request_transaction(request) -> bool:
    try:
        match = resolve(request.path_info, getattr(request, "urlconf", None))
    except Resolver404:
        return True
    return getattr(match.func, "tenant_request_transaction", True)


class TenantContextMiddleware:
    """Run the rest of the request in one transaction scoped to the host's tenant (after authentication, so the
    user is known; the user table is platform-level), except views marked ``outside_request_transaction``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.tenant is None:
            return self.get_response(request)
        if not _in_request_transaction(request):
            with tenant_bound(request.tenant):
                return self.get_response(request)
        with tenant_context(request.tenant):
            response = self.get_response(request)
            if response.status_code >= 500:
                # A failure below was turned into this response without leaving the block: what the request had
                # written before it failed is not kept.
                transaction.set_rollback(True)
            return response
