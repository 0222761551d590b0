"""Websocket authentication: the browser's session cookie (Channels' AuthMiddlewareStack)
or, for scripts, `?token=<api token>` in the query string. A user still holding a one-time
password is anonymous here, as the API refuses them (common.permissions)."""
from urllib.parse import parse_qs, urlsplit

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import WebsocketDenier
from django.contrib.auth.models import AnonymousUser


@database_sync_to_async
def _user_for_token(key: str):
    from common.auth import token_user_or_none

    return token_user_or_none(key)


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


def origin_allowed(origin: str, host: str) -> bool:
    """A websocket's Origin must be the page's own origin: the same host *and port* as the
    Host it connects to (which must be an allowed host), or one of
    ``DJANGO_CSRF_TRUSTED_ORIGINS``. Channels' AllowedHostsOriginValidator compares host
    names only, so a page on any port of an allowed host could connect."""
    from django.conf import settings
    from django.http.request import split_domain_port, validate_host

    if not origin or origin == "null":
        return False
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    parsed = urlsplit(origin)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return False
    domain, _port = split_domain_port(host)
    return parsed.netloc.lower() == host.lower() and validate_host(domain, settings.ALLOWED_HOSTS)


class SameOriginValidator:
    """ASGI middleware: websockets from another origin (``origin_allowed``) are denied."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers") or [])
        origin = headers.get(b"origin", b"").decode("latin1")
        host = headers.get(b"host", b"").decode("latin1")
        if scope["type"] == "websocket" and not origin_allowed(origin, host):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
