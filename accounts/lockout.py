from django.conf import settings
from django.shortcuts import render
from rest_framework.exceptions import APIException

from core.api import error_response


def lockout_message() -> str:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return (
        f"Too many failed sign-in attempts. This account is locked for {minutes} minutes on this network; "
        "try again later or ask your administrator to unlock it."
    )


def retry_after_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


class LockedOut(APIException):
    """Raised by API sign-in when django-axes refused the attempt: the same 429 as the sign-in form."""

    status_code = 429
    default_code = "locked_out"

    def __init__(self):
        super().__init__(lockout_message())
        self.wait = retry_after_seconds()


def lockout_response(request, original_response=None, credentials=None):
    """django-axes calls this when a sign-in is refused because of earlier failures."""
    retry_after = str(retry_after_seconds())
    if request.path.startswith("/api/"):
        response = error_response(429, "locked_out", lockout_message())
    else:
        response = render(request, "accounts/locked_out.html", {"message": lockout_message()}, status=429)
    response["Retry-After"] = retry_after
    return response
