from __future__ import annotations

from django.conf import settings

from core.api import error_response


class SecurityHeadersMiddleware:
    """Headers Django's SecurityMiddleware does not set."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        if request.path.startswith("/api/") or request.path.startswith("/admin/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response


class RequestSizeLimitMiddleware:
    """Refuse a body larger than the limit before anything reads it (the declared length is enough to know).

    Django itself only enforces DATA_UPLOAD_MAX_MEMORY_SIZE when the body is read as form data or ``.body``;
    checking the header up front gives every endpoint the same clear error.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(400, "bad_request", "Content-Length is not a number.")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit and length > limit:
            return error_response(
                400, "request_too_large", f"The request body is {length} bytes; the limit is {limit} bytes."
            )
        return self.get_response(request)
