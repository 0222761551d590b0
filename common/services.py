"""Writes of the auth endpoints: issuing and revoking API tokens."""
from __future__ import annotations

from django.db import transaction
from rest_framework.authtoken.models import Token

from common.auth import token_is_expired


@transaction.atomic
def auth_token_get_or_create(*, user) -> Token:
    """The user's token; a new one when there is none or it has expired."""
    token = Token.objects.select_for_update().filter(user=user).first()
    if token is not None and token_is_expired(token):
        token.delete()
        token = None
    return token or Token.objects.create(user=user)


def auth_token_revoke(*, user, key: str | None = None) -> int:
    """Delete the user's token (``key``: only if it is that one); returns how many went."""
    tokens = Token.objects.filter(user=user)
    if key is not None:
        tokens = tokens.filter(key=key)
    return tokens.delete()[0]
