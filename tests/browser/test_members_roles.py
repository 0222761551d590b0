"""Members and roles in the browser: the owner creates a viewer with a one-time password
on the members page; the viewer logs in, must choose a password first, then sees the
project without any write control (upload, classes, import, training, deploy, members,
the mask editor) while the API refuses the writes the page no longer offers; the owner
changes the role and cannot demote the last owner."""
from __future__ import annotations

from tests.browser.server import USERNAME
from tests.browser.training_fixtures import _csrf, api_post, seed_synthetic_project


def _log_in_as(pg, username: str, password: str) -> None:
    pg.goto("/login")
    pg.get_by_label("Username").fill(username)
    pg.get_by_label("Password").fill(password)
    pg.get_by_role("button", name="Log in").click()


def test_owner_adds_a_viewer_who_sees_no_write_controls(page, browser, tessera, login, shot):
    login(page)
    project = seed_synthetic_project(page, "Team roles", images=2, val_every=0)
    pid, asset_id = project["id"], project["assets"][0]

    # -- owner: members page, create a viewer with a one-time password -------------------
    page.goto(f"/projects/{pid}")
    page.get_by_role("link", name="Members").click()
    page.get_by_role("heading", name="Members").wait_for()
    own_role = page.get_by_label(f"Role of {USERNAME}")
    assert own_role.is_disabled()  # the last owner cannot be demoted
    assert page.get_by_role("button", name=f"Remove {USERNAME}").is_disabled()
    page.get_by_label("Username").fill("vic")
    page.locator("form[aria-label='Add a member']").get_by_label("Role").select_option("viewer")
    page.get_by_role("button", name="Create new user").click()
    one_time = page.get_by_test_id("one-time-password").inner_text().strip()
    assert len(one_time) >= 12
    page.locator("tr[data-member=vic]").wait_for()
    assert page.get_by_label("Role of vic").input_value() == "viewer"
    shot(page, "owner-created-viewer")

    # -- viewer: first login asks for a new password ----------------------------------------
    viewer_ctx = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=tessera.url)
    viewer_ctx.set_default_timeout(60_000)
    vp = viewer_ctx.new_page()
    viewer_errors: list[str] = []
    vp.on("pageerror", lambda e: viewer_errors.append(str(e)))
    _log_in_as(vp, "vic", one_time)
    vp.get_by_role("heading", name="Choose your password").wait_for()
    shot(vp, "viewer-must-change-password")
    vp.get_by_label("One-time password").fill(one_time)
    vp.get_by_label("New password", exact=True).fill("vic-own-pass-1")
    vp.get_by_label("New password again").fill("vic-own-pass-1")
    with vp.expect_response("**/api/v1/auth/password/") as changed:
        vp.get_by_role("button", name="Save password").click()
    assert changed.value.status == 200, changed.value.text()
    vp.get_by_role("heading", name="Projects").wait_for()
    vp.get_by_role("link", name="Team roles").first.click()

    # -- viewer: the pages show no write controls --------------------------------------------
    vp.locator("ul.asset-grid li").first.wait_for()
    assert vp.get_by_label("Upload files").count() == 0
    assert vp.get_by_role("link", name="Members").count() == 0
    shot(vp, "viewer-assets")
    vp.get_by_role("link", name="Classes").click()
    vp.get_by_label(f"Name of class {project['classes'][0]['name']}").wait_for()
    assert vp.get_by_label(f"Name of class {project['classes'][0]['name']}").is_disabled()
    assert vp.get_by_role("button", name="Add class").count() == 0
    assert vp.get_by_role("button", name="Delete").count() == 0
    vp.get_by_role("link", name="Import / export").click()
    vp.get_by_role("heading", name="Export", exact=True).wait_for()
    assert vp.locator("form[aria-label='Import annotations']").count() == 0
    vp.get_by_role("link", name="Training").click()
    vp.get_by_text("Viewers can watch runs").wait_for()
    assert vp.get_by_role("button", name="Run training").count() == 0
    shot(vp, "viewer-training")
    vp.get_by_role("link", name="Deployments").click()
    vp.get_by_text("Only project owners deploy models").wait_for()
    assert vp.locator("form[aria-label='Deploy a model']").count() == 0
    vp.goto(f"/projects/{pid}/annotate/{asset_id}")
    vp.get_by_test_id("read-only-asset").wait_for()
    assert vp.locator("canvas").count() == 0
    shot(vp, "viewer-asset-read-only")
    vp.goto(f"/projects/{pid}/members")
    vp.get_by_text("Only project owners manage members").wait_for()
    assert vp.get_by_role("button", name="Create new user").count() == 0

    # -- viewer: the API still refuses every write ------------------------------------------
    headers = _csrf(vp)
    refusals = {
        "upload": vp.request.post(f"/api/v1/projects/{pid}/assets/", headers=headers, multipart={
            "files": {"name": "x.png", "mimeType": "image/png", "buffer": b"\x89PNG"}}),
        "class": vp.request.post(f"/api/v1/projects/{pid}/classes/", headers=headers,
                                 data={"name": "sneaky"}),
        "masks": vp.request.put(f"/api/v1/assets/{asset_id}/masks/", headers=headers,
                                data={"masks": []}),
        "delete asset": vp.request.delete(f"/api/v1/assets/{asset_id}/", headers=headers),
        "member": vp.request.post(f"/api/v1/projects/{pid}/members/", headers=headers,
                                  data={"username": "vic", "role": "owner"}),
        "workflow": vp.request.post(f"/api/v1/projects/{pid}/workflows/", headers=headers,
                                    data={"name": "w", "config": {}}),
    }
    assert {k: r.status for k, r in refusals.items()} == dict.fromkeys(refusals, 403)
    assert vp.request.get(f"/api/v1/projects/{pid}/").json()["role"] == "viewer"

    # -- owner promotes the viewer: the change holds --------------------------------------
    page.get_by_label("Role of vic").select_option("annotator")
    page.wait_for_function(
        f"async () => (await (await fetch('/api/v1/projects/{pid}/members/')).json())"
        ".some(m => m.username === 'vic' && m.role === 'annotator')")
    vp.goto(f"/projects/{pid}")
    vp.get_by_label("Upload files").wait_for(state="attached")
    shot(vp, "annotator-sees-upload")
    # An unknown name is a clear error on the page, not a silent failure.
    page.get_by_label("Username").fill("nobody-here")
    page.get_by_role("button", name="Add existing user").click()
    page.get_by_role("alert").filter(has_text="No user named").wait_for()
    shot(page, "owner-unknown-user")
    assert not page.console_errors and not viewer_errors  # type: ignore[attr-defined]
    api_post(page, f"/projects/{pid}/classes/", {"name": "owner-can"})
    viewer_ctx.close()
