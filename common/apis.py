"""Auth (session login for the browser, token for scripts) and the health endpoint."""
from django.contrib.auth import authenticate, login, logout
from django.middleware.csrf import get_token
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from common.errors import ApplicationError
from common.health import health_report, liveness, readiness


class LoginThrottle(AnonRateThrottle):
    rate = "30/min"


class CredentialsInput(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"})


class UserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


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
    @extend_schema(responses=UserOutput)
    def get(self, request):
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
