from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import ensure_csrf_cookie


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
