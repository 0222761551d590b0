"""Websocket authentication: the browser's session cookie (Channels' AuthMiddlewareStack)
or, for scripts, `?token=<api token>` in the query string. A user still holding a one-time
password is anonymous here, as the API refuses them (common.permissions)."""
from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser


@database_sync_to_async
def _user_for_token(key: str):
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key).first()
    return token.user if token and token.user.is_active else None


class QueryTokenAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):
        query = parse_qs(scope.get("query_string", b"").decode())
        if "token" in query:
            user = await _user_for_token(query["token"][0])
            if user is not None:
                scope["user"] = user
        return await super().__call__(scope, receive, send)


@database_sync_to_async
def _password_change_pending(user) -> bool:
    from common.services import password_change_pending

    return password_change_pending(user=user)


class OwnPasswordMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        if user is not None and user.is_authenticated and await _password_change_pending(user):
            scope = {**scope, "user": AnonymousUser()}
        return await super().__call__(scope, receive, send)


def TokenOrSessionAuthMiddlewareStack(inner):  # noqa: N802 - mirrors Channels' naming
    return AuthMiddlewareStack(QueryTokenAuthMiddleware(OwnPasswordMiddleware(inner)))
