from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import ensure_csrf_cookie

from common.errors import error_body


@ensure_csrf_cookie
def frontend_index(request: HttpRequest) -> HttpResponse:
    """Serve the built single-page app; the client-side router takes the path from here."""
    index = settings.FRONTEND_DIST / "index.html"
    if not index.exists():
        return HttpResponse(
            "<h1>Tessera</h1><p>The frontend is not built. Run <code>make run</code> "
            "(or <code>cd frontend && npm ci && npm run build</code>). "
            "The API is at <a href='/api/v1/docs/'>/api/v1/docs/</a>.</p>",
            status=503,
        )
    return HttpResponse(index.read_bytes(), content_type="text/html; charset=utf-8")


# Django's error views for requests that never reach a DRF view (no URL matched, an error
# outside DRF): JSON in the API's error format under /api/, Django's own pages elsewhere.
def _api_or_page(status: int, code: str, message: str,
                 page: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.path.startswith("/api/"):
            return JsonResponse(error_body(code, message.format(path=request.path)), status=status)
        return page(request, *args, **kwargs)  # the exception, except for handler500

    return view


bad_request = _api_or_page(400, "bad_request", "The request could not be read.",
                           defaults.bad_request)
permission_denied = _api_or_page(403, "permission_denied", "You do not have permission for this.",
                                 defaults.permission_denied)
not_found = _api_or_page(404, "not_found", "No API endpoint at {path}.", defaults.page_not_found)
server_error = _api_or_page(500, "server_error", "The server failed; its log has the details.",
                            defaults.server_error)


def admin_login(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """The admin's login form, with its attempts counted by the API's login throttle (the
    same rate per client address): over it, 429 with ``Retry-After``."""
    from django.contrib import admin

    from common.apis import LoginThrottle

    if request.method == "POST":
        throttle = LoginThrottle()
        if not throttle.allow_request(request, None):
            wait = int(throttle.wait() or 1)
            response = HttpResponse("Too many login attempts; try again later.", status=429,
                                    content_type="text/plain; charset=utf-8")
            response["Retry-After"] = str(max(wait, 1))
            return response
    return admin.site.login(request, *args, **kwargs)
