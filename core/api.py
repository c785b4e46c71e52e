"""The one API error format, ``{"error": {"code", "message", "fields"}}``, and shared DRF pieces."""

from __future__ import annotations

from typing import TypeAlias, overload

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection, transaction
from django.http import Http404, JsonResponse
from rest_framework import exceptions, pagination
from rest_framework.response import Response

from core.errors import DomainError


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def error_response(status: int, code: str, message: str, fields: dict | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, message, fields), status=status)


# DRF's error detail made plain: messages, lists of such, or names mapped to such.
_Flat: TypeAlias = "list[str] | list[_Flat] | dict[str, _Flat]"


@overload
def _flatten(detail: dict) -> dict[str, _Flat]: ...
@overload
def _flatten(detail: object) -> _Flat: ...
def _flatten(detail: object) -> _Flat:
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return [str(item) for item in detail]
        nested: list[_Flat] = [_flatten(item) for item in detail]
        return nested
    return [str(detail)]


def _validation_error(exc: exceptions.ValidationError) -> Response:
    detail = exc.detail
    if not isinstance(detail, dict):
        messages = _flatten(detail)
        return Response(
            error_body("invalid", " ".join(map(str, messages)) if isinstance(messages, list) else "Invalid."),
            400,
        )
    fields = _flatten(detail)
    general = fields.pop("non_field_errors", None)
    if general:
        message = " ".join(map(str, general))
    else:
        names = ", ".join(sorted(fields))
        message = f"Some fields are invalid: {names}." if names else "The request is invalid."
    return Response(error_body("invalid", message, fields), 400)


_CODES = {
    exceptions.ParseError: ("malformed_request", 400),
    exceptions.AuthenticationFailed: ("authentication_failed", 401),
    exceptions.NotAuthenticated: ("not_authenticated", 401),
    exceptions.PermissionDenied: ("permission_denied", 403),
    exceptions.NotFound: ("not_found", 404),
    exceptions.MethodNotAllowed: ("method_not_allowed", 405),
    exceptions.NotAcceptable: ("not_acceptable", 406),
    exceptions.UnsupportedMediaType: ("unsupported_media_type", 415),
    exceptions.Throttled: ("throttled", 429),
}


def _roll_back(status: int) -> None:
    """An error answer changes nothing: the request's transaction (opened by TenantContextMiddleware) is rolled
    back. DRF's own set_rollback only acts with ATOMIC_REQUESTS, which this project does not use. Refused sign-ins
    (401) and lock-outs/throttling (429) keep their writes: the audit of failed attempts must survive."""
    if status not in (401, 429) and connection.in_atomic_block:
        transaction.set_rollback(True)


def exception_handler(exc, context):
    """DRF exception handler: every error leaves in the one format, and the transaction is rolled back."""
    if isinstance(exc, DomainError):
        _roll_back(exc.status)
        fields = {
            name: errors if isinstance(errors, list) else [str(errors)] for name, errors in exc.fields.items()
        }
        response = Response(error_body(exc.code, exc.message, fields), status=exc.status)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            response["Retry-After"] = str(retry_after)
        return response
    if isinstance(exc, RequestDataTooBig):
        _roll_back(400)
        return Response(error_body("request_too_large", "The request body is too large."), status=400)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: let Django log it and answer 500
    _roll_back(exc.status_code)
    if isinstance(exc, exceptions.ValidationError):
        response = _validation_error(exc)
    else:
        code, status = next(
            ((code, status) for cls, (code, status) in _CODES.items() if isinstance(exc, cls)),
            (exc.default_code, exc.status_code),
        )
        specific = exc.get_codes()
        if isinstance(specific, str) and specific != exc.default_code:
            code = specific  # the raiser named the reason (e.g. mfa_required, token_wrong_tenant): keep it
        message = str(exc.detail) if not isinstance(exc.detail, (dict, list)) else exc.default_detail
        response = Response(error_body(code, str(message)), status=status)
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        response["WWW-Authenticate"] = auth_header
    wait = getattr(exc, "wait", None)
    if wait:
        response["Retry-After"] = str(int(wait))
    return response


class CursorPagination(pagination.CursorPagination):
    """Stable pages under concurrent inserts; newest first unless a view says otherwise."""

    ordering = "-created_at"
    page_size_query_param = "page_size"
    max_page_size = 200
