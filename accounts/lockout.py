from django.conf import settings
from django.shortcuts import render

from core.api import error_response


def lockout_message() -> str:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return (
        f"Too many failed sign-in attempts. This account is locked for {minutes} minutes on this network; "
        "try again later or ask your administrator to unlock it."
    )


def lockout_response(request, original_response=None, credentials=None):
    """django-axes calls this when a sign-in is refused because of earlier failures."""
    retry_after = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    if request.path.startswith("/api/"):
        response = error_response(429, "locked_out", lockout_message())
    else:
        response = render(request, "accounts/locked_out.html", {"message": lockout_message()}, status=429)
    response["Retry-After"] = retry_after
    return response
