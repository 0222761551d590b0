"""Stored XSS (issue 15, item 3) in a real Chromium: a PNG+HTML polyglot uploaded as
``x.html`` is served as an image, its script never runs with the app's origin; the app's
own pages run under the Content-Security-Policy without a single violation."""
from __future__ import annotations

from tests.browser.server import ApiClient, log_in

SCRIPT = (b"<html><body><script>document.title='XSS';"
          b"fetch('/xss-ran/?c='+encodeURIComponent(document.cookie))</script></body></html>")


def _csp_violations(pg) -> list[str]:
    found: list[str] = []
    pg.on("console", lambda m: found.append(m.text) if "Content Security Policy" in m.text else None)
    return found


def test_an_uploaded_polyglot_runs_no_script(page, tessera, shot):
    from tests.factories import png_bytes

    api = ApiClient(tessera.url)
    pid = api("POST", "/projects/", json={"name": "xss"}).json()["id"]
    polyglot = png_bytes(64, 48) + SCRIPT
    created = api("POST", f"/projects/{pid}/assets/", files=[("files", ("x.html", polyglot))])
    assert created.status_code == 201, created.text
    aid = created.json()["created"][0]["id"]

    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    log_in(page)  # the session and CSRF cookies the script would be after
    assert any(c["name"] == "csrftoken" for c in page.context.cookies())
    response = page.goto(f"/api/v1/assets/{aid}/file/")
    assert response.headers["content-type"] == "image/png"
    assert "sandbox" in response.headers["content-security-policy"]
    page.wait_for_timeout(1500)  # time for a script to run, if one could
    shot(page, "file-opened")
    assert page.title() != "XSS"
    assert not [u for u in requested if "/xss-ran/" in u]
    # Rendered as an image: the document is Chromium's image viewer, not the HTML.
    assert page.evaluate("() => document.querySelector('img') !== null")


def test_the_app_pages_run_under_the_csp_without_violations(page, tessera, shot):
    from tests.factories import png_bytes

    violations = _csp_violations(page)
    api = ApiClient(tessera.url)
    pid = api("POST", "/projects/", json={"name": "csp"}).json()["id"]
    aid = api("POST", f"/projects/{pid}/assets/",
              files=[("files", ("a.png", png_bytes(64, 48)))]).json()["created"][0]["id"]
    log_in(page)
    page.goto(f"/projects/{pid}")
    page.get_by_text("csp").first.wait_for()
    page.goto(f"/projects/{pid}/annotate/{aid}")
    page.locator("canvas").first.wait_for()
    page.wait_for_timeout(1500)
    shot(page, "annotator")
    policy = page.evaluate("async () => (await fetch('/')).headers.get('content-security-policy')")
    assert "'wasm-unsafe-eval'" in policy
    page.goto("/admin/login/")  # Django's admin runs under the same policy
    page.get_by_label("Username").wait_for()
    page.wait_for_timeout(500)
    shot(page, "admin")
    assert violations == []
    assert page.console_errors == []
