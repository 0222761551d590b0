"""Auth (session login for the browser, token for scripts) and the health endpoint."""
from django.conf import settings
from django.contrib.auth import authenticate, login, logout, update_session_auth_hash
from django.middleware.csrf import get_token
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from common.auth import token_expires_at
from common.errors import ApplicationError, NotFoundError
from common.health import health_report, liveness, readiness
from common.services import (
    auth_token_get_or_create,
    auth_token_revoke,
    password_change_pending,
    user_password_change,
)


class LoginThrottle(SimpleRateThrottle):
    """Login attempts per client address (``TESSERA_NUM_PROXIES`` says which address is
    the client's), signed in or not; the admin's login form shares the same count."""

    scope = "login"

    def get_rate(self) -> str:
        return settings.TESSERA_LOGIN_RATE

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class CredentialsInput(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"})


class UserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    must_change_password = serializers.SerializerMethodField(
        help_text="Logged in with a one-time password: every other call is refused (403 "
                  "password_change_required) until POST /auth/password/.")
    local_accounts = serializers.SerializerMethodField(
        help_text="Owners may create accounts with a one-time password (no identity provider).")

    def get_must_change_password(self, user) -> bool:
        return password_change_pending(user=user)

    def get_local_accounts(self, user) -> bool:
        return settings.TESSERA_LOCAL_ACCOUNTS


def _authenticate(request, data) -> object:
    payload = CredentialsInput(data=data)
    payload.is_valid(raise_exception=True)
    user = authenticate(request, **payload.validated_data)
    if user is None:
        raise ApplicationError("Wrong username or password.", code="invalid_credentials",
                               status_code=status.HTTP_400_BAD_REQUEST)
    return user


class TokenApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [LoginThrottle]

    @extend_schema(request=CredentialsInput, responses={200: dict})
    def post(self, request):
        user = _authenticate(request, request.data)
        token = auth_token_get_or_create(user=user)
        return Response({"token": token.key, "expires_at": token_expires_at(token),
                         "user": UserOutput(user).data})


class LoginApi(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]

    @extend_schema(request=CredentialsInput, responses=UserOutput)
    def post(self, request):
        user = _authenticate(request, request.data)
        login(request, user)
        return Response(UserOutput(user).data)


class LogoutApi(APIView):
    """Ends the session; called with a token, revokes that token."""

    permission_classes = [AllowAny]

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        if isinstance(request.auth, Token):
            auth_token_revoke(user=request.user, key=request.auth.key)
        logout(request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenOutput(serializers.Serializer):
    """A token is shown by its first 8 characters only; the whole key is never listed."""

    prefix = serializers.SerializerMethodField()
    created = serializers.DateTimeField()
    expires_at = serializers.SerializerMethodField()
    current = serializers.SerializerMethodField()

    def get_prefix(self, token: Token) -> str:
        return token.key[:8]

    @extend_schema_field(serializers.DateTimeField())
    def get_expires_at(self, token: Token) -> str:
        return serializers.DateTimeField().to_representation(token_expires_at(token))

    def get_current(self, token: Token) -> bool:
        return self.context.get("current") == token.key


class TokenListApi(APIView):
    """The signed-in user's API tokens; DELETE revokes them all."""

    pagination_class = None

    @extend_schema(responses=TokenOutput(many=True))
    def get(self, request):
        tokens = Token.objects.filter(user=request.user)
        current = request.auth.key if isinstance(request.auth, Token) else None
        return Response(TokenOutput(tokens, many=True, context={"current": current}).data)

    @extend_schema(responses={204: None}, operation_id="auth_tokens_revoke_all")
    def delete(self, request):
        auth_token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenDetailApi(APIView):
    @extend_schema(responses={204: None, 404: None})
    def delete(self, request, prefix: str):
        tokens = Token.objects.filter(user=request.user, key__startswith=prefix)
        token = tokens.first() if len(prefix) >= 8 else None
        if token is None:
            raise NotFoundError("No token of yours starts with this (give 8 characters or more).")
        auth_token_revoke(user=request.user, key=token.key)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    permission_classes = [IsAuthenticated]  # also while a one-time password is pending

    @extend_schema(responses=UserOutput)
    def get(self, request):
        return Response(UserOutput(request.user).data)


class PasswordChangeApi(APIView):
    permission_classes = [IsAuthenticated]  # the way out of a pending one-time password

    class Input(serializers.Serializer):
        current_password = serializers.CharField(style={"input_type": "password"})
        new_password = serializers.CharField(style={"input_type": "password"})

    @extend_schema(request=Input, responses=UserOutput)
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        user_password_change(user=request.user, **data.validated_data)
        if request.session.session_key:  # stay logged in with the new password
            update_session_auth_hash(request, request.user)
        return Response(UserOutput(request.user).data)


class CsrfApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    def get(self, request):
        return Response({"csrfToken": get_token(request)})


class HealthApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    def get(self, request):
        report = health_report()
        return Response(report, status=200 if report["ok"] else 503)


class _ProbeApi(APIView):
    """A probe: no authentication, no session, no throttling; 503 when not ok."""
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes: list = []
    check = staticmethod(liveness)

    def get(self, request):
        report = self.check()
        return Response(report, status=200 if report["ok"] else 503)


class LivenessApi(_ProbeApi):
    """The process answers HTTP (Kubernetes livenessProbe)."""
    check = staticmethod(liveness)


class ReadinessApi(_ProbeApi):
    """The database and Redis answer (Kubernetes readinessProbe)."""
    check = staticmethod(readiness)
