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
# outside DRF): JSON in the API's error format under /api/, Django's pages elsewhere.
def _api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _api(request):
        return JsonResponse(error_body("bad_request", "The request could not be read."), status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _api(request):
        return JsonResponse(error_body("permission_denied", "You do not have permission for this."),
                            status=403)
    return defaults.permission_denied(request, exception)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _api(request):
        return JsonResponse(error_body("not_found", f"No API endpoint at {request.path}."),
                            status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _api(request):
        return JsonResponse(error_body("server_error", "The server failed; its log has the details."),
                            status=500)
    return defaults.server_error(request)
