"""URL map: the versioned JSON API under /api/v1/, its schema and docs, the admin,
and the single-page frontend for everything else."""
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from common.metrics import metrics_view
from common.views import admin_login, frontend_index

api_v1 = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view loads its init script from a URL instead of inline: fine under a CSP.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema", template_name="tessera/redoc.html"),
         name="redoc"),
    path("", include("common.urls")),
    path("", include("projects.urls")),
    path("", include("annotator.urls")),
    path("", include("training.urls")),
    path("", include("deployments.urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("admin/login/", admin_login, name="admin-login-throttled"),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),  # Prometheus (common/metrics.py)
]
# Media is never served directly: files are read through API views that check
# project membership (e.g. /api/v1/assets/{id}/file/).
urlpatterns.append(re_path(r"^(?!api/|admin/|media/|static/|ws/).*$", frontend_index))

handler400 = "common.views.bad_request"
handler403 = "common.views.permission_denied"
handler404 = "common.views.not_found"
handler500 = "common.views.server_error"
