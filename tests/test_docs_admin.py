"""API docs and the Django admin work from the install alone: Swagger UI and ReDoc come
from drf-spectacular-sidecar's static files (no CDN), /static/ answers with real CSS and
JavaScript, and a staff user can browse the registered models.
The browser side (rendering with the network to outside hosts blocked) is in
tests/browser/test_docs_admin_offline.py."""
import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model

from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_docs_pages_load_their_assets_from_this_server(client, path):
    page = client.get(path)
    assert page.status_code == 200
    html = page.content.decode()
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    scripts = [u for u in urls if u.endswith(".js")]
    assert scripts, html
    assert all(u.startswith(("/static/drf_spectacular_sidecar/", path)) for u in scripts), urls
    assert "<script>" not in html  # no inline script: works under a strict CSP
    assert "cdn" not in html.lower() and "https://" not in html
    for url in scripts:
        asset = client.get(url)
        assert asset.status_code == 200 and "javascript" in asset["Content-Type"], url


def test_admin_static_files_are_css_not_the_app(client):
    css = client.get("/static/admin/css/base.css")
    assert css.status_code == 200 and css["Content-Type"].startswith("text/css")
    assert b"<html" not in b"".join(css.streaming_content if css.streaming else [css.content])[:200]
    assert client.get("/static/admin/no-such-file.css").status_code == 404


def test_every_model_is_registered_and_its_admin_pages_render(client):
    staff = get_user_model().objects.create_superuser("boss", password="boss-pass-1")
    project = factories.project_create(name="Admin project", vera="viewer")
    factories.asset_create(project, seed=3)
    client.force_login(staff)
    index = client.get("/admin/")
    assert index.status_code == 200 and b"/static/admin/css/base.css" in index.content
    registered = {m._meta.label for m in admin.site._registry}
    for app_label in ("projects", "annotator", "training", "deployments", "common"):
        for model in apps.get_app_config(app_label).get_models():
            assert model._meta.label in registered, model
            url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
            assert client.get(url).status_code == 200, url
    listing = client.get("/admin/projects/membership/?role=viewer").content.decode()
    assert "vera" in listing and "Admin project" in listing


def test_non_staff_users_are_sent_to_the_admin_login(client):
    client.force_login(factories.user_create("plain"))
    response = client.get("/admin/projects/project/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_staff_user_browses_every_model_read_only(client):
    staff = get_user_model().objects.create_user("clerk", password="clerk-pass-1", is_staff=True)
    project = factories.project_create(name="Clerk project")
    client.force_login(staff)
    index = client.get("/admin/").content.decode()
    assert "Projects, classes and assets" in index and "Training runs" in index
    listing = client.get("/admin/projects/project/")
    assert listing.status_code == 200 and "Clerk project" in listing.content.decode()
    assert "/admin/projects/project/add/" not in listing.content.decode()  # no add permission
    detail = client.get(f"/admin/projects/project/{project.id}/change/")
    assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode()  # read-only
    assert client.post(f"/admin/projects/project/{project.id}/change/", {"name": "Hacked"}).status_code == 403
    project.refresh_from_db()
    assert project.name == "Clerk project"
