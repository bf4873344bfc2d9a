"""Thin views: validate, call one service, serialize."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.views import TokenRefreshView

from linguaflex.errors import InvalidCredentials
from linguaflex.openapi import error_responses, success_serializer
from linguaflex.throttling import LoginEmailThrottle, LoginIPThrottle, RegisterThrottle

from . import services
from .serializers import (
    EmailTokenObtainSerializer,
    LoginOutputSerializer,
    LogoutInputSerializer,
    PasswordResetConfirmInputSerializer,
    PasswordResetInputSerializer,
    RegisterInputSerializer,
    RegisterOutputSerializer,
    RotatingRefreshSerializer,
    UserSerializer,
)

# What a 401 names in WWW-Authenticate. DRF turns a 401 into a 403 on a view without
# authentication classes unless the view names a scheme, so public views name it themselves.
WWW_AUTHENTICATE = 'Bearer realm="api"'


class PublicAPIView(APIView):
    """Public endpoints ignore any Authorization header, stale or not."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request):
        return WWW_AUTHENTICATE


class RegisterView(PublicAPIView):
    throttle_classes = [RegisterThrottle]

    @extend_schema(
        operation_id="accounts_register",
        request=RegisterInputSerializer,
        responses={201: RegisterOutputSerializer, **error_responses(400, 413, 415, 429)},
    )
    def post(self, request):
        serializer = RegisterInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_register(**serializer.validated_data)
        return Response(RegisterOutputSerializer(user).data, status=status.HTTP_201_CREATED)


class LoginView(PublicAPIView):
    throttle_classes = [LoginIPThrottle, LoginEmailThrottle]

    @extend_schema(
        operation_id="accounts_login",
        request=EmailTokenObtainSerializer,
        responses={200: LoginOutputSerializer, **error_responses(400, 401, 413, 415, 429)},
    )
    def post(self, request):
        serializer = EmailTokenObtainSerializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except AuthenticationFailed:
            # simplejwt raises DRF's AuthenticationFailed for a wrong password, an unknown or an
            # inactive account: all are the contract's invalid_credentials.
            raise InvalidCredentials() from None
        return Response(serializer.validated_data)


class RefreshView(TokenRefreshView):
    authentication_classes: list = []
    throttle_classes = [LoginIPThrottle]
    serializer_class = RotatingRefreshSerializer  # simplejwt's TokenViewBase names the 401 scheme itself

    @extend_schema(
        operation_id="accounts_token_refresh",
        request=TokenRefreshSerializer,
        responses={200: TokenRefreshSerializer, **error_responses(400, 401, 413, 415, 429)},
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class LogoutView(APIView):
    @extend_schema(
        operation_id="accounts_logout",
        request=LogoutInputSerializer,
        responses={200: success_serializer("LogoutResponse"), **error_responses(400, 401, 413, 415)},
    )
    def post(self, request):
        serializer = LogoutInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.user_logout(user=request.user, refresh=serializer.validated_data["refresh"])
        return Response({"success": True})


class MeView(APIView):
    @extend_schema(operation_id="accounts_me", responses={200: UserSerializer, **error_responses(401)})
    def get(self, request):
        return Response(UserSerializer(request.user).data)


class PasswordResetView(PublicAPIView):
    throttle_classes = [RegisterThrottle]

    @extend_schema(
        operation_id="accounts_password_reset",
        request=PasswordResetInputSerializer,
        responses={200: success_serializer("PasswordResetResponse"), **error_responses(400, 413, 415, 429)},
    )
    def post(self, request):
        serializer = PasswordResetInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.password_reset_request(email=serializer.validated_data["email"])
        return Response({"success": True, "message": "If the account exists, a reset e-mail is on its way."})


class PasswordResetConfirmView(PublicAPIView):
    throttle_classes = [RegisterThrottle]

    @extend_schema(
        operation_id="accounts_password_reset_confirm",
        request=PasswordResetConfirmInputSerializer,
        responses={200: success_serializer("PasswordResetConfirmResponse"), **error_responses(400, 413, 415, 429)},
    )
    def post(self, request):
        serializer = PasswordResetConfirmInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.password_reset_confirm(**serializer.validated_data)
        return Response({"success": True})
