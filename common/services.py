"""Writes for user accounts: API tokens (issue, revoke), local accounts with a one-time
password, and password changes."""
from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework.authtoken.models import Token

from common.auth import token_is_expired
from common.errors import ApplicationError
from common.models import PasswordChangeRequired


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


def password_change_pending(*, user) -> bool:
    return PasswordChangeRequired.objects.filter(user_id=user.pk).exists()


@transaction.atomic
def user_create_with_one_time_password(*, username: str) -> tuple[object, str]:
    """A new local account and its one-time password (shown once; it must be changed at
    the first login). Refused when accounts come from an identity provider."""
    if not settings.TESSERA_LOCAL_ACCOUNTS:
        raise ApplicationError("Accounts come from the identity provider on this install; "
                               "ask its administrator to create the user.",
                               code="local_accounts_disabled", status_code=403)
    username = username.strip()
    User = get_user_model()
    try:
        User.username_validator(username)
    except ValidationError as exc:
        raise ApplicationError(exc.messages[0], details={"username": exc.messages}) from exc
    if User.objects.filter(username__iexact=username).exists():
        raise ApplicationError(f"A user named {username!r} already exists; add them by name instead.",
                               code="user_exists", status_code=409,
                               details={"username": ["Already taken."]})
    password = secrets.token_urlsafe(12)
    user = User.objects.create_user(username=username, password=password)
    PasswordChangeRequired.objects.create(user=user)
    return user, password


@transaction.atomic
def user_password_change(*, user, current_password: str, new_password: str) -> None:
    if not user.check_password(current_password):
        raise ApplicationError("The current password is wrong.", code="invalid_credentials",
                               details={"current_password": ["Wrong password."]})
    if new_password == current_password:
        raise ApplicationError("Choose a password different from the current one.",
                               details={"new_password": ["Same as the current password."]})
    try:
        password_validation.validate_password(new_password, user)
    except ValidationError as exc:
        raise ApplicationError(" ".join(exc.messages), details={"new_password": exc.messages}) from exc
    user.set_password(new_password)
    user.save(update_fields=["password"])
    PasswordChangeRequired.objects.filter(user=user).delete()
