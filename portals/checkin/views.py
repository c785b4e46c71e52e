"""The guides' check-in page, where a voucher's QR code leads: the booking and its travellers, tick who is here,
check them in. Signed-in staff with ``bookings.check_in`` only: the code on a voucher alone shows nobody anything."""

from __future__ import annotations

import re

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts import mfa
from bookings.services import checkin
from core.errors import DomainError

TEMPLATE = "checkin/check_in.html"


def _guard(request):
    """None when the user may check travellers in here; else the response that sends them away."""
    user = request.user
    tenant = getattr(request, "tenant", None)
    if tenant is None:
        raise PermissionDenied
    if not user.is_authenticated or (mfa.needs_verification(user) and not mfa.is_verified(user)):
        return redirect_to_login(request.get_full_path())
    if user.role_in(tenant.pk) is None or not user.has_perm("bookings.check_in"):
        raise PermissionDenied("Your role may not check travellers in.")
    return None


def _private(response):
    response["Cache-Control"] = "private, no-store"
    # The code is in the address: never sent to another site. Not "no-referrer": browsers then send "Origin: null"
    # with the page's own forms, which CSRF protection rightly refuses.
    response["Referrer-Policy"] = "same-origin"
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def enter_code(request):
    """Type a voucher's code when its QR code will not scan."""
    refusal = _guard(request)
    if refusal is not None:
        return refusal
    code = (
        re.sub(r"[^A-Za-z0-9-]", "", request.POST.get("code", "")).upper() if request.method == "POST" else ""
    )
    if code:
        return redirect("check_in", token=code)
    return _private(render(request, TEMPLATE, {"sheet": None, "enter_code": True}))


@never_cache
@require_http_methods(["GET", "POST"])
def check_in_page(request, token: str):
    refusal = _guard(request)
    if refusal is not None:
        return refusal
    status = 200
    if request.method == "POST":
        try:
            checked = checkin.check_in(token, request.POST.getlist("travellers"))
        except DomainError as error:
            messages.error(request, error.message)
            status = error.status
        else:
            names = ", ".join(f"{t.first_name} {t.last_name}" for t in checked)
            messages.success(request, f"Checked in: {names}.")
            return redirect("check_in", token=token)
    try:
        sheet = checkin.check_in_sheet(token)
    except DomainError as error:
        if request.method == "GET":
            messages.error(request, error.message)
        return _private(render(request, TEMPLATE, {"sheet": None, "enter_code": True}, status=error.status))
    return _private(render(request, TEMPLATE, {"sheet": sheet, "enter_code": False}, status=status))
