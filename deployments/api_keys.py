"""Writes and reads of deployment API keys: creating (the token shown once, its sha256
stored), revoking, checking a token (with a short Redis cache, so the predict endpoint
needs no database round trip), and the ``rate`` of a key. Web side only."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from django.core.cache import cache
from django.utils import timezone

from common.errors import ApplicationError
from deployments.models import ApiKey, Deployment

TOKEN_PREFIX = "tsk_"
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


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def api_key_create(*, deployment: Deployment, user, name: str = "", rate: str = "") -> tuple[ApiKey, str]:
    """A new key for ``deployment``. Returns (row, token); the token is not stored (only
    its sha256), so this is the only time it can be shown."""
    if rate:
        try:
            parse_rate(rate)
        except ValueError as exc:
            raise ApplicationError(str(exc), details={"rate": [str(exc)]}) from None
    prefix = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        deployment=deployment, name=name[:200], prefix=prefix, hashed_key=_hash_token(token),
        rate=rate, created_by=user if user and user.is_authenticated else None)
    return key, token


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


# The predict endpoint authenticates every request: its key (with the deployment) is cached
# in Redis so that a request needs no database connection (under ASGI each request runs in
# a new thread, and a new PostgreSQL connection costs ~10 ms). ApiKey and Deployment saves
# and deletes drop the cached rows (deployments.models receivers), as do the queryset
# updates in this module; anything else that updates them with a bare queryset
# ``update()`` must call ``api_keys_forget``. Entries live at most API_KEY_CACHE_S, which
# also bounds the effect of a request re-caching a row while it is being changed.
API_KEY_CACHE_S = 10


def _api_key_cache_name(prefix: str) -> str:
    return f"deployments:api-key:{prefix}"


def api_keys_forget(*, prefixes: Sequence[str] = (), deployment_id: int | None = None) -> None:
    """Drop cached keys: these prefixes, and every key of ``deployment_id``."""
    names = [_api_key_cache_name(p) for p in prefixes]
    if deployment_id is not None:
        names += [_api_key_cache_name(p) for p in
                  ApiKey.objects.filter(deployment_id=deployment_id).values_list("prefix", flat=True)]
    if names:
        cache.delete_many(names)


def api_key_authenticate(*, token: str) -> ApiKey | None:
    """The live key whose token this is (its ``deployment`` loaded), or None (unknown,
    malformed or revoked)."""
    parts = token.split("_")
    if len(parts) < 3 or not token.startswith(TOKEN_PREFIX):
        return None
    name = _api_key_cache_name(parts[1])
    key = cache.get(name)
    if key is None:
        key = ApiKey.objects.filter(prefix=parts[1]).select_related("deployment").first()
        if key is None:
            return None
        cache.set(name, key, API_KEY_CACHE_S)
    if not hmac.compare_digest(key.hashed_key, _hash_token(token)):
        return None
    if key.revoked_at is not None:
        return None
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        # At most one write a minute per key: last_used is for people, not accounting.
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
        cache.set(name, key, API_KEY_CACHE_S)
    return key
