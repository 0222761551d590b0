"""The API docs (Swagger UI, ReDoc) and the Django admin in Chromium with every request to
a host other than the node aborted: they render from the install alone, styled."""
from __future__ import annotations

import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from tests.browser.server import ROOT

STAFF, STAFF_PASSWORD = "staffer", "staff-pass-123"


@pytest.fixture
def offline_page(browser, tessera):
    """A page whose requests to any host but the node's are aborted (and recorded)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=tessera.url)
    context.set_default_timeout(60_000)
    local = urlsplit(tessera.url).netloc
    outside: list[str] = []

    def gate(route):
        if urlsplit(route.request.url).netloc == local:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", gate)
    pg = context.new_page()
    failed: list[str] = []
    # Failures on this server only: an outside request is in `outside` (or, blocked by the
    # page's own CSP, never leaves the browser).
    pg.on("requestfailed", lambda r: urlsplit(r.url).netloc == local and failed.append(r.url))
    pg.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
    yield pg, outside, failed
    context.close()


def test_swagger_ui_renders_offline(offline_page, shot):
    pg, outside, failed = offline_page
    pg.goto("/api/v1/docs/")
    pg.locator(".swagger-ui .info .title", has_text="Tessera API").wait_for()
    pg.locator(".opblock-summary-path", has_text="/api/v1/projects/").first.wait_for()
    assert pg.locator(".opblock").count() > 20
    shot(pg, "swagger-offline")
    assert outside == [] and failed == []


def test_redoc_renders_offline(offline_page, shot):
    pg, outside, failed = offline_page
    pg.goto("/api/v1/redoc/")
    pg.get_by_role("heading", name="Tessera API").first.wait_for()
    pg.get_by_text("/api/v1/projects/").first.wait_for(state="attached")
    shot(pg, "redoc-offline")
    assert outside == [] and failed == []


def test_admin_is_styled_and_usable_by_staff_offline(offline_page, tessera, shot):
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c",
         "from django.contrib.auth import get_user_model as g; "
         "from projects.services import project_create; "
         f"u = g().objects.filter(username='{STAFF}').first() or "
         f"g().objects.create_superuser('{STAFF}', password='{STAFF_PASSWORD}'); "
         "project_create(user=u, name='Admin demo')"],
        cwd=ROOT, env=tessera.env, check=True)
    pg, outside, failed = offline_page
    pg.goto("/admin/")
    pg.get_by_label("Username").fill(STAFF)
    pg.get_by_label("Password").fill(STAFF_PASSWORD)
    pg.get_by_role("button", name="Log in").click()
    pg.get_by_role("heading", name="Site administration").wait_for()
    # Styled: the admin's CSS applied (its header bar has a background, the body its font).
    header_bg = pg.evaluate("getComputedStyle(document.querySelector('#header')).backgroundColor")
    assert header_bg not in ("rgba(0, 0, 0, 0)", "transparent"), header_bg
    assert pg.locator("link[rel=stylesheet][href^='/static/admin/css/']").count() >= 1
    shot(pg, "admin-index")
    pg.get_by_role("link", name="Projects", exact=True).click()
    pg.get_by_role("heading", name="Select project to change").wait_for()
    pg.get_by_role("link", name="Memberships").click()
    pg.locator("#result_list").wait_for()
    pg.locator("#changelist-filter").get_by_role("link", name="Owner").click()
    pg.locator("#result_list").wait_for()
    shot(pg, "admin-memberships")
    assert outside == [] and failed == []
