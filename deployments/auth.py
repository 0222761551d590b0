"""API-key authentication and per-key throttling of the predict endpoint.

``Authorization: Bearer tsk_<prefix>_<secret>`` authenticates as the key (``request.auth``
is the :class:`~deployments.models.ApiKey`, ``request.user`` stays anonymous). A wrong,
malformed or revoked key is a 401. The throttle counts requests per key (per user for
session/token callers of the try-it panel) at the key's ``rate`` or the default
``TESSERA_PREDICT_RATE``; over the rate DRF answers 429 with ``Retry-After``."""
from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, throttling

from deployments.models import ApiKey

DEFAULT_RATE = "600/min"
_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60,
            "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """``"<n>/<period>"`` (period s|sec|second|m|min|minute|h|hour|d|day) -> (n, seconds)."""
    try:
        count, period = rate.split("/")
        seconds = _PERIODS[period.strip().lower()]
        n = int(count)
    except (ValueError, KeyError):
        raise ValueError(f"rate must look like '120/min' (periods: s, min, hour, day), got {rate!r}") from None
    if n < 1:
        raise ValueError("rate must allow at least one request")
    return n, seconds


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request) -> tuple[AnonymousUser, ApiKey] | None:
        from deployments.services import api_key_authenticate

        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None  # not ours: session or token authentication may apply
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header; use "
                                                  "'Bearer <api-key>'.")
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid API key.") from None
        key = api_key_authenticate(token=token)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return AnonymousUser(), key

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


class PredictRateThrottle(throttling.SimpleRateThrottle):
    """DRF's sliding window of request times, per API key (per user when no key is used)."""

    scope = "deployment_predict"

    def get_rate(self) -> str:
        from deployments.services import setting

        return setting("TESSERA_PREDICT_RATE", DEFAULT_RATE)

    def parse_rate(self, rate: str | None) -> tuple[int | None, int | None]:
        if rate is None:
            return None, None
        return parse_rate(rate)

    def allow_request(self, request, view) -> bool:
        key = request.auth if isinstance(request.auth, ApiKey) else None
        if key is not None and key.rate:
            self.rate = key.rate
            self.num_requests, self.duration = parse_rate(key.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str | None:
        if isinstance(request.auth, ApiKey):
            # The prefix is random: a new database reusing ids never meets old histories.
            ident = f"key-{request.auth.pk}-{request.auth.prefix}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            return None
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Documents the API key in the OpenAPI schema (HTTP bearer)."""

    target_class = "deployments.auth.ApiKeyAuthentication"
    name = "DeploymentApiKey"

    def get_security_definition(self, auto_schema) -> dict:
        return {"type": "http", "scheme": "bearer",
                "description": "A deployment's API key: 'Authorization: Bearer tsk_...'."}
