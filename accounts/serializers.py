from __future__ import annotations

import re

from rest_framework import exceptions, serializers
from rest_framework_simplejwt.serializers import (
    TokenBlacklistSerializer,
    TokenObtainPairSerializer,
    TokenRefreshSerializer,
)
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import mfa
from accounts.api_auth import TENANT_CLAIM, tenant_of
from accounts.lockout import LockedOut
from accounts.models import User


class TenantTokenObtainSerializer(TokenObtainPairSerializer):
    """Email + password (+ the second factor where needed) → access and refresh tokens for this tenant only."""

    username_field = "email"
    otp = serializers.CharField(required=False, allow_blank=True, max_length=16, write_only=True)

    def validate(self, attrs):
        tenant = tenant_of(self.context["request"])
        if tenant is None:
            raise exceptions.NotFound("The API is served on a tenant's host.")
        request = self.context["request"]
        try:
            super().validate(attrs)  # authenticates (through django-axes) and sets self.user
        except exceptions.AuthenticationFailed:
            # simplejwt hands axes the DRF request, so axes marks the lock-out there and AxesMiddleware, which
            # only sees the Django request, never answers it: say it here, as the sign-in form does.
            if getattr(request, "axes_locked_out", False):
                raise LockedOut() from None
            raise
        user = self.user
        if mfa.needs_verification(user):
            token = attrs.get("otp") or ""
            if not token:
                raise exceptions.AuthenticationFailed(
                    'This account signs in with a second factor: send the current code as "otp".',
                    code="mfa_required",
                )
            if mfa.verify_second_factor(user, token, request=request) is None:
                raise exceptions.AuthenticationFailed(
                    "The second-factor code is not valid.", code="mfa_invalid"
                )
        refresh = RefreshToken.for_user(user)
        refresh[TENANT_CLAIM] = str(tenant.pk)
        return {"refresh": str(refresh), "access": str(refresh.access_token)}


def _check_tenant(request, raw_token: str) -> None:
    tenant = tenant_of(request)
    token = RefreshToken(raw_token)  # raises TokenError (→ 401) if invalid, expired or blacklisted
    if tenant is None or token.get(TENANT_CLAIM) != str(tenant.pk):
        raise exceptions.AuthenticationFailed(
            "This token was not issued for this site.", code="token_wrong_tenant"
        )
    user = User.objects.filter(pk=token.get("user_id"), is_active=True).first()
    if user is None or not user.has_api_access_in(tenant.pk):
        raise exceptions.AuthenticationFailed(
            "This account has no access to this site.", code="no_membership"
        )


class TenantTokenRefreshSerializer(TokenRefreshSerializer):
    """Rotates: the refresh token used here is blacklisted and a new one returned."""

    def validate(self, attrs):
        _check_tenant(self.context["request"], attrs["refresh"])
        return super().validate(attrs)


class TenantTokenRevokeSerializer(TokenBlacklistSerializer):
    def validate(self, attrs):
        _check_tenant(self.context["request"], attrs["refresh"])
        return super().validate(attrs)


_PHONE = re.compile(r"^\+?[0-9 ()-]{6,32}$")


class MeSerializer(serializers.ModelSerializer):
    phone = serializers.CharField(max_length=32, allow_blank=True, required=False)
    role = serializers.SerializerMethodField()
    mfa_enrolled = serializers.SerializerMethodField()
    agency = serializers.SerializerMethodField(help_text="For an agency's booker: the agency; staff: null.")

    class Meta:
        model = User
        fields = ["id", "email", "full_name", "phone", "role", "agency", "mfa_enrolled"]
        read_only_fields = ["id", "email", "role", "agency", "mfa_enrolled"]

    def get_agency(self, user: User) -> dict | None:
        partner = user.current_partner
        if partner is None:
            return None
        return {
            "id": str(partner.agency_id),
            "name": str(partner.agency),
            "is_agency_admin": partner.is_agency_admin,
        }

    def get_role(self, user: User) -> str | None:
        return user.current_role

    def get_mfa_enrolled(self, user: User) -> bool:
        return mfa.has_confirmed_device(user)

    def validate_phone(self, value: str) -> str:
        value = value.strip()
        if value and not _PHONE.match(value):
            raise serializers.ValidationError(
                "Enter a phone number: digits, spaces, (), - and an optional leading +."
            )
        return value
