"""API tokens that expire: ``Authorization: Token <key>`` is refused once the token is
older than ``TESSERA_TOKEN_TTL_DAYS`` (and the expired token deleted). Logging out with a
token revokes it; ``/auth/tokens/`` lists and revokes a user's tokens."""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token


def token_expires_at(token: Token) -> datetime:
    return token.created + timedelta(days=settings.TESSERA_TOKEN_TTL_DAYS)


def token_is_expired(token: Token) -> bool:
    return token_expires_at(token) <= timezone.now()


def token_user_or_none(key: str):
    """The active user of an unexpired token, for callers outside DRF (websockets)."""
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or token_is_expired(token) or not token.user.is_active:
        return None
    return token.user


class ExpiringTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key: str):
        user, token = super().authenticate_credentials(key)
        if token_is_expired(token):
            token.delete()
            raise exceptions.AuthenticationFailed("Token expired: ask for a new one.",
                                                  code="token_expired")
        return user, token
