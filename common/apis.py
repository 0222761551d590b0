"""Auth (session login for the browser, token for scripts) and the health endpoint."""
from django.conf import settings
from django.contrib.auth import authenticate, login, logout, update_session_auth_hash
from django.middleware.csrf import get_token
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from common.errors import ApplicationError
from common.health import health_report
from common.services import password_change_pending, user_password_change


class LoginThrottle(AnonRateThrottle):
    rate = "30/min"


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
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key, "user": UserOutput(user).data})


class LoginApi(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]

    @extend_schema(request=CredentialsInput, responses=UserOutput)
    def post(self, request):
        user = _authenticate(request, request.data)
        login(request, user)
        return Response(UserOutput(user).data)


class LogoutApi(APIView):
    permission_classes = [AllowAny]

    def post(self, request):
        logout(request)
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
