"""API-key authentication and per-key throttling of the predict endpoint.

``Authorization: Bearer tsk_<prefix>_<secret>`` authenticates as the key (``request.auth``
is the :class:`~deployments.models.ApiKey`, ``request.user`` stays anonymous). A wrong,
malformed or revoked key is a 401. The throttle counts requests per key (per user for
session/token callers of the try-it panel) at the key's ``rate`` or the default
``TESSERA_PREDICT_RATE`` (a sliding window in Redis); over the rate DRF answers 429
with ``Retry-After``."""
from __future__ import annotations

import secrets
import time

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, throttling

from common.conf import setting
from deployments.api_keys import api_key_authenticate, parse_rate
from deployments.models import ApiKey
from deployments.registry import redis_client, redis_key

DEFAULT_RATE = "600/min"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request) -> tuple[AnonymousUser, ApiKey] | None:
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


# A sliding window of request times per caller in a Redis sorted set, checked and
# updated atomically in one round trip (DRF's SimpleRateThrottle reads and writes a cached
# list: two round trips, and concurrent requests can all pass on the same count).
_WINDOW_SCRIPT = """
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  return redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2]
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('PEXPIRE', key, math.ceil(window * 1000))
return false
"""
_window_script = None


class PredictRateThrottle(throttling.BaseThrottle):
    """At most ``rate`` requests per sliding window, per API key (per user for session or
    token callers); the key's own ``rate``, else TESSERA_PREDICT_RATE."""

    def allow_request(self, request, view) -> bool:
        global _window_script
        if isinstance(request.auth, ApiKey):
            # The prefix is random: a new database reusing ids never meets old histories.
            ident, own_rate = f"key-{request.auth.pk}-{request.auth.prefix}", request.auth.rate
        elif request.user and request.user.is_authenticated:
            ident, own_rate = f"user-{request.user.pk}", ""
        else:
            return True  # refused by the view (401) anyway
        limit, window = parse_rate(own_rate or setting("TESSERA_PREDICT_RATE", DEFAULT_RATE))
        if _window_script is None:
            _window_script = redis_client().register_script(_WINDOW_SCRIPT)
        now = time.time()
        oldest = _window_script(keys=[redis_key(f"throttle:predict:{ident}")],
                                args=[now, window, limit, f"{now}-{secrets.token_hex(4)}"])
        self.retry_after = None if oldest is None else max(0.0, float(oldest) + window - now)
        return oldest is None

    def wait(self) -> float | None:
        return self.retry_after


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Documents the API key in the OpenAPI schema (HTTP bearer)."""

    target_class = "deployments.auth.ApiKeyAuthentication"
    name = "DeploymentApiKey"

    def get_security_definition(self, auto_schema) -> dict:
        return {"type": "http", "scheme": "bearer",
                "description": "A deployment's API key: 'Authorization: Bearer tsk_...'."}
