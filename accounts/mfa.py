"""Second factor for staff: TOTP devices and single-use recovery codes (django-otp)."""

from __future__ import annotations

import base64
import secrets

import segno
from django.db import transaction
from django_otp import match_token
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from core.errors import DomainError
from core.locking import UPDATE, lock_rows
from tenants import audit

RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper without mistakes


def has_confirmed_device(user: User) -> bool:
    return user.has_confirmed_device()


def is_verified(user) -> bool:
    """Whether this request's session passed a second factor (django-otp's middleware sets ``is_verified`` on
    ``request.user``; a user object fresh from ``login()`` has not got it and is not verified)."""
    check = getattr(user, "is_verified", None)
    return bool(check and check())


def needs_verification(user: User) -> bool:
    """Whether this session must present a second factor before it may act: if the role demands MFA, or if
    the user has enrolled a device (then it is always asked)."""
    return user.needs_second_factor()


def pending_totp_device(user: User) -> TOTPDevice:
    """The unconfirmed device being enrolled (created on first call; the secret stays until confirmed)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    return device or TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def qr_code_svg_data_uri(device: TOTPDevice) -> str:
    return segno.make(device.config_url, error="m").svg_data_uri(scale=5)


def base32_secret(device: TOTPDevice) -> str:
    return base64.b32encode(device.bin_key).decode().rstrip("=")


@transaction.atomic
def confirm_totp_enrolment(user: User, token: str, *, request=None) -> list[str]:
    enrolling = lock_rows(TOTPDevice.objects.filter(user=user, confirmed=False), strength=UPDATE)
    device = enrolling[-1] if enrolling else None  # the newest enrolment
    if device is None:
        raise DomainError("There is no enrolment in progress; start again.", code="no_enrolment")
    token = (token or "").strip().replace(" ", "")
    if not token.isdigit() or len(token) != device.digits or not device.verify_token(token):
        raise DomainError(
            "That code is not valid. Enter the 6-digit code your authenticator app shows now.",
            code="invalid_code",
            fields={"token": ["Invalid or expired code."]},
        )
    TOTPDevice.objects.filter(user=user, confirmed=True).delete()  # one authenticator at a time
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    audit.record(audit.Action.MFA_ENROLLED, actor=user, target=user, request=request)
    return issue_recovery_codes(user, request=request)


def _recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


@transaction.atomic
def issue_recovery_codes(user: User, *, request=None) -> list[str]:
    """Replace the user's recovery codes; each code works once."""
    device, _ = StaticDevice.objects.get_or_create(
        user=user, name="Recovery codes", defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    audit.record(audit.Action.RECOVERY_CODES, actor=user, target=user, request=request)
    return codes


def verify_second_factor(user: User, token: str, *, request=None):
    """The device that accepts ``token`` (a TOTP code or a recovery code, which is then used up), or None."""
    token = (token or "").strip().lower().replace(" ", "")
    if len(token) == 10 and token.isalnum() and not token.isdigit():
        token = f"{token[:5]}-{token[5:]}"  # a recovery code typed without its dash
    device = match_token(user, token) if token else None
    if device is None:
        audit.record(audit.Action.MFA_FAILED, actor=user, target=user, request=request)
    elif isinstance(device, StaticDevice):
        audit.record(audit.Action.RECOVERY_CODE_USED, actor=user, target=user, request=request)
    return device
