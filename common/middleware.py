"""The middleware chain, sync-only from end to end: one thread hop per request under ASGI.

Django runs each method of an async-capable ``MiddlewareMixin`` middleware (all of
Django's own) through ``sync_to_async`` when the request is async: a thread hop for every
``process_request`` and ``process_response``, about a dozen per request with the usual
chain. A chain whose members are all sync-only is adapted once, at its top, and runs in
the request's thread. Measured through daphne on a 2-core machine: a trivial DRF view
8.3 -> 5.3 ms per request, an async Django view 6.9 -> 3.8 ms.

``settings.MIDDLEWARE`` lists only the classes here; tests/test_web_server.py checks the
chain stays sync.
"""
from collections.abc import Callable

from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest, HttpResponse
from django.middleware import clickjacking, common, csrf, security
from whitenoise.middleware import WhiteNoiseMiddleware

from common.logs import RequestIdMiddleware  # noqa: F401 - listed in settings.MIDDLEWARE
from common.metrics import MetricsMiddleware  # noqa: F401 - listed in settings.MIDDLEWARE


def _sync_only(middleware: type) -> type:
    """``middleware`` with ``async_capable = False`` (same name, same behaviour)."""
    return type(middleware.__name__, (middleware,),
                {"async_capable": False, "__module__": __name__,
                 "__doc__": f"{middleware.__module__}.{middleware.__name__}, sync-only."})


SecurityMiddleware = _sync_only(security.SecurityMiddleware)
SessionMiddleware = _sync_only(sessions.SessionMiddleware)
CommonMiddleware = _sync_only(common.CommonMiddleware)
CsrfViewMiddleware = _sync_only(csrf.CsrfViewMiddleware)
AuthenticationMiddleware = _sync_only(auth.AuthenticationMiddleware)
MessageMiddleware = _sync_only(messages.MessageMiddleware)
XFrameOptionsMiddleware = _sync_only(clickjacking.XFrameOptionsMiddleware)


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise (sync-only already): the built frontend and the static files."""


class CrossOriginIsolationMiddleware:
    """Cross-origin isolation headers: onnxruntime-web needs SharedArrayBuffer for
    multithreaded WebAssembly, which browsers only grant to cross-origin-isolated pages.
    Sits outside StaticFilesMiddleware: the worker scripts need the headers too."""

    sync_capable, async_capable = True, False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.setdefault("Cross-Origin-Embedder-Policy", "credentialless")
        response.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response


class ContentSecurityPolicyMiddleware:
    """The app's Content-Security-Policy (``settings.TESSERA_CSP``) on every answer that
    does not set its own (stored files set a sandboxing one, see common.files). The
    default lets the page run only its own scripts, plus WebAssembly compilation and
    blob: workers, which onnxruntime-web needs for the in-browser SAM decoder. The API
    docs page (Swagger UI from its CDN, an inline bootstrap script) has its own."""

    sync_capable, async_capable = True, False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        from django.conf import settings

        self.get_response = get_response
        self.policy = settings.TESSERA_CSP
        self.docs_policy = settings.TESSERA_CSP_API_DOCS

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.policy:
            policy = self.docs_policy if request.path == "/api/v1/docs/" else self.policy
            response.setdefault("Content-Security-Policy", policy)
        return response


class RedisOutageMiddleware:
    """A Redis error raised outside DRF's views (a Django view, a websocket-less page):
    503 with ``Retry-After``, JSON in the API's error format (DRF views get the same from
    common.errors.exception_handler)."""

    sync_capable, async_capable = True, False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from django.conf import settings
        from django.http import JsonResponse

        from common.errors import is_redis_outage, redis_outage_body

        if not is_redis_outage(exception):
            return None
        response = JsonResponse(redis_outage_body(), status=503)
        response["Retry-After"] = str(settings.TESSERA_RETRY_AFTER_S)
        return response
