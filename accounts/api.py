from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions
from rest_framework.throttling import ScopedRateThrottle
from rest_framework_simplejwt.views import TokenViewBase

from accounts import serializers, services
from tenants.permissions import HasApiAccess


class _TokenView(TokenViewBase):
    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "token"


@extend_schema(tags=["auth"], summary="Obtain access and refresh tokens for this tenant")
class TokenObtainView(_TokenView):
    serializer_class = serializers.TenantTokenObtainSerializer


@extend_schema(tags=["auth"], summary="Exchange a refresh token for new tokens (the old one is revoked)")
class TokenRefreshView(_TokenView):
    serializer_class = serializers.TenantTokenRefreshSerializer


@extend_schema(tags=["auth"], summary="Revoke a refresh token (sign out)")
class TokenRevokeView(_TokenView):
    serializer_class = serializers.TenantTokenRevokeSerializer


@extend_schema(tags=["account"])
class MeView(generics.RetrieveUpdateAPIView):
    serializer_class = serializers.MeSerializer
    permission_classes = [HasApiAccess]
    http_method_names = ["get", "patch", "head", "options"]

    def get_object(self):
        return self.request.user

    def perform_update(self, serializer):
        services.update_profile(
            self.request.user, actor=self.request.user, request=self.request, **serializer.validated_data
        )
