"""End to end in headless Chromium: splits (the run refused on an empty val split, then
auto-split and a manual move by shift-click), bulk delete with the storage checked,
project rename and deletion, and the review flow with mask overlays in the grid."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.browser.server import ROOT
from tests.browser.training_fixtures import (
    TINY_CONFIG,
    _csrf,
    api_get,
    api_post,
    seed_synthetic_project,
)


def _media_root(tessera) -> Path:
    return Path(tessera.env.get("TESSERA_MEDIA_ROOT") or Path(tessera.var_dir) / "media")


def _media_files(tessera) -> set[str]:
    media = _media_root(tessera)
    return {str(p.relative_to(media)) for p in media.rglob("*") if p.is_file()}


def _wait(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError("condition not met in time")


def _assets(pg, pid: int) -> list[dict]:
    return api_get(pg, f"/projects/{pid}/assets/?page_size=200")["results"]


def _thumbnails_made(pg, pid: int) -> None:
    _wait(lambda: all(a["thumbnail_url"] for a in _assets(pg, pid)))


def test_auto_split_and_a_manual_move(page, login, shot):
    pg = page
    login(pg)
    project = seed_synthetic_project(pg, "Splits e2e", images=20, val_every=0)
    pid = project["id"]
    api_post(pg, f"/projects/{pid}/workflows/", {"name": "tiny", "config": TINY_CONFIG})

    # Every image is in train: the training page says so next to Run Training, and refuses.
    pg.goto(f"/projects/{pid}/training")
    readiness = pg.get_by_test_id("split-readiness")
    readiness.get_by_text("The validation split is empty").wait_for()
    pg.get_by_role("button", name="Edit as new").click()
    pg.get_by_role("button", name="Run Training").click()
    problems = pg.get_by_test_id("builder-problems")
    problems.get_by_text("validation split is empty", exact=False).wait_for()
    assert "Auto-split" in problems.inner_text()
    shot(pg, "run-refused-empty-val")

    pg.goto(f"/projects/{pid}")
    counts = pg.get_by_test_id("split-counts")
    counts.get_by_text("The validation split is empty").wait_for()
    pg.get_by_role("button", name="Auto-split…").click()
    form = pg.get_by_role("form", name="Auto-split")
    form.get_by_label("train %").fill("70")
    form.get_by_label("val %").fill("20")
    form.get_by_label("test %").fill("10")
    form.get_by_label("Seed").fill("3")
    form.get_by_role("button", name="Split").click()
    form.get_by_role("status").get_by_text("train 14, val 4, test 2").wait_for()
    _wait(lambda: "The validation split is empty" not in counts.inner_text())
    shot(pg, "auto-split-done")
    by_split = {s: sum(a["split"] == s for a in _assets(pg, pid)) for s in ("train", "val", "test")}
    assert by_split == {"train": 14, "val": 4, "test": 2}

    # Manual move: click the first tile's box, shift-click the third: three picked.
    tiles = pg.locator(".asset-grid > li")
    tiles.nth(0).get_by_role("checkbox").click()
    tiles.nth(2).get_by_role("checkbox").click(modifiers=["Shift"])
    bar = pg.get_by_role("group", name="Bulk actions")
    bar.get_by_text("3 selected").wait_for()
    picked = [int(h.split("/annotate/")[1].split("?")[0])
              for h in [tiles.nth(i).locator("a.asset-tile").get_attribute("href") for i in range(3)]]
    bar.get_by_label("Move to").select_option("test")
    bar.get_by_role("button", name="Move", exact=True).click()
    pg.get_by_text("Moved 3 assets to test.").wait_for()
    shot(pg, "moved-three-to-test")
    moved = {a["id"]: a for a in _assets(pg, pid) if a["id"] in picked}
    assert all(a["split"] == "test" and a["split_locked"] for a in moved.values())

    # Auto-split again: the hand-placed ones stay in test.
    form.get_by_label("Seed").fill("4")
    form.get_by_role("button", name="Split").click()
    form.get_by_role("status").get_by_text("3 placed by hand kept their split").wait_for()
    assert all(a["split"] == "test" for a in _assets(pg, pid) if a["id"] in picked)
    # The grid filters by split and counts it.
    n_val = sum(a["split"] == "val" for a in _assets(pg, pid))
    pg.locator("select[name=split]").select_option("val")
    pg.get_by_text(re.compile(rf"^{n_val} assets")).wait_for()
    _wait(lambda: pg.locator(".asset-grid > li").count() == n_val)
    pg.get_by_role("option", name=f"Val ({n_val})").wait_for(state="attached")
    shot(pg, "filtered-val")

    pg.goto(f"/projects/{pid}/training")
    pg.get_by_test_id("split-readiness").get_by_text(f"{n_val} ({n_val} labelled)").wait_for()
    assert "validation split" not in pg.get_by_test_id("split-readiness").inner_text()
    shot(pg, "training-page-splits-ok")
    assert not pg.console_errors


def test_bulk_delete_leaves_no_files(page, login, shot, tessera):
    pg = page
    login(pg)
    before = _media_files(tessera)
    project = seed_synthetic_project(pg, "Delete e2e", images=4, val_every=0)
    pid = project["id"]
    _thumbnails_made(pg, pid)
    mine = _media_files(tessera) - before
    assert len([f for f in mine if f.startswith("assets/")]) == 4
    assert len([f for f in mine if f.startswith("thumbnails/")]) == 4

    pg.goto(f"/projects/{pid}")
    pg.get_by_role("button", name="Select all 4 matching").click()
    pg.locator(".asset-grid > li").nth(3).get_by_role("checkbox").click()  # all but the last
    bar = pg.get_by_role("group", name="Bulk actions")
    bar.get_by_text("3 selected").wait_for()
    bar.get_by_role("button", name="Delete…").click()
    shot(pg, "confirm-delete")
    bar.get_by_role("button", name="Delete 3 assets").click()
    pg.get_by_text("Deleted 3 assets.").wait_for()
    pg.get_by_text("1 assets").wait_for()
    shot(pg, "after-delete")

    (kept,) = _assets(pg, pid)
    left = _wait(lambda: (lambda f: f if len(f) == 2 else None)(_media_files(tessera) - before))
    assert sorted(f.split("/")[0] for f in left) == ["assets", "thumbnails"]
    image = next(f for f in left if f.startswith("assets/"))
    served = pg.request.get(kept["file_url"]).body()
    assert (_media_root(tessera) / image).read_bytes() == served
    assert not any(f.startswith(f"embeddings/{a}/") for f in _media_files(tessera)
                   for a in project["assets"] if a != kept["id"])
    assert not pg.console_errors


def test_project_rename_and_delete(page, login, shot, tessera):
    pg = page
    login(pg)
    before = _media_files(tessera)
    project = seed_synthetic_project(pg, "Doomed e2e", images=3, val_every=0)
    pid = project["id"]
    _thumbnails_made(pg, pid)
    assert len(_media_files(tessera) - before) == 6

    pg.goto(f"/projects/{pid}")
    pg.get_by_role("link", name="Project settings").click()
    rename = pg.get_by_role("form", name="Rename project")
    rename.get_by_label("Project name").fill("Renamed e2e")
    rename.get_by_role("button", name="Rename").click()
    pg.get_by_role("heading", name="Renamed e2e").wait_for()
    shot(pg, "renamed")

    delete = pg.get_by_role("form", name="Delete project")
    button = delete.get_by_role("button", name="Delete project")
    delete.get_by_label("Type the project's name to confirm").fill("Doomed e2e")  # the old name
    assert button.is_disabled()
    delete.get_by_label("Type the project's name to confirm").fill("Renamed e2e")
    shot(pg, "confirm-typed")
    button.click()
    delete.get_by_role("progressbar", name="Deletion progress").wait_for()
    pg.wait_for_url(lambda url: url.rstrip("/").endswith(tessera.url.rstrip("/")) or url.endswith("/"))
    pg.get_by_role("heading", name="Projects").wait_for()
    shot(pg, "back-on-the-list")
    assert pg.get_by_text("Renamed e2e").count() == 0
    assert pg.request.get(f"/api/v1/projects/{pid}/").status == 404
    assert _wait(lambda: not (_media_files(tessera) - before) or None, timeout=30)
    assert not pg.console_errors


def _second_user(tessera, username: str, password: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c",
         "from django.contrib.auth import get_user_model as g; "
         f"g().objects.filter(username='{username}').exists() or "
         f"g().objects.create_user('{username}', password='{password}')"],
        cwd=ROOT, env=tessera.env, check=True)


def test_review_flow_with_overlays_and_open_assets_skipped(page, login, shot, tessera):
    pg = page
    login(pg)
    project = seed_synthetic_project(pg, "Review e2e", images=4, val_every=0)
    pid = project["id"]
    first, second, third, fourth = project["assets"]
    _thumbnails_made(pg, pid)
    for label_class in project["classes"]:  # a colour the synthetic shapes do not have
        res = pg.request.patch(f"/api/v1/projects/{pid}/classes/{label_class['id']}/",
                               data={"color": "#00ffff"}, headers=_csrf(pg))
        assert res.ok, res.text()

    # A colleague has the first asset open (their annotator sends heartbeats).
    _second_user(tessera, "reviewer2", "e2e-password-2")
    api_post(pg, f"/projects/{pid}/members/", {"username": "reviewer2", "role": "annotator"})
    token = requests.post(f"{tessera.url}/api/v1/auth/token/",
                          json={"username": "reviewer2", "password": "e2e-password-2"}).json()["token"]
    pg.goto(f"/projects/{pid}")
    overlays = pg.get_by_test_id("mask-overlay")
    _wait(lambda: overlays.count() == 4)
    _wait(lambda: all(overlays.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
                      for i in range(4)))
    shot(pg, "grid-with-mask-overlays")

    # The colleague's page: a real presence socket on the first asset, kept open meanwhile.
    colleague = pg.context.new_page()
    colleague.goto("/")
    colleague.evaluate(
        """([id, token]) => new Promise((resolve, reject) => {
             const ws = new WebSocket(`ws://${location.host}/ws/assets/${id}/presence/?token=${token}`);
             ws.onmessage = () => resolve(true);
             ws.onclose = (e) => reject(new Error(`closed ${e.code}`));
             window.colleagueSocket = ws;
           })""", [first, token])
    pg.get_by_role("button", name="Next to review").click()
    pg.wait_for_url(f"**/projects/{pid}/review/{second}")  # the first is open elsewhere
    panel = pg.get_by_role("complementary", name="Review")
    panel.get_by_text(re.compile(r"^\d+ masks$")).wait_for()
    panel.get_by_role("button", name="Reject").click()
    panel.get_by_text("a rejection needs a comment").wait_for()
    panel.get_by_label("Comment (needed to reject)").fill("The circle's edge is off")
    shot(pg, "rejecting")
    panel.get_by_role("button", name="Reject").click()
    pg.wait_for_url(f"**/projects/{pid}/review/{third}")
    pg.get_by_role("button", name="Accept").click()
    pg.wait_for_url(f"**/projects/{pid}/review/{fourth}")
    pg.get_by_role("button", name="Accept").click()
    pg.get_by_text("Nothing else is waiting for review.").wait_for()
    shot(pg, "review-done")
    # The colleague leaves: the first asset is free for review again.
    colleague.close()
    pg.goto(f"/projects/{pid}")
    pg.get_by_role("button", name="Next to review").click()
    pg.wait_for_url(f"**/projects/{pid}/review/{first}")

    statuses = {a["id"]: (a["status"], a["review_comment"]) for a in _assets(pg, pid)}
    assert statuses == {first: ("labeled", ""), second: ("rejected", "The circle's edge is off"),
                        third: ("reviewed", ""), fourth: ("reviewed", "")}

    # "Next to label" brings the rejected asset back to a labeler.
    pg.goto(f"/projects/{pid}")
    pg.get_by_role("button", name="Next to label").click()
    pg.wait_for_url(f"**/projects/{pid}/annotate/{second}**")
    shot(pg, "next-to-label-rejected")

    # The project list: a cover thumbnail, counts per status, search.
    pg.goto("/")
    pg.get_by_label("Search").fill("Review e2")
    card = pg.get_by_test_id("project-card").filter(has_text="Review e2e")
    card.get_by_text("2 reviewed").wait_for()
    card.get_by_text("1 rejected").wait_for()
    assert card.locator("img.cover").evaluate("img => img.complete && img.naturalWidth > 0")
    assert pg.get_by_test_id("project-card").count() == 1
    shot(pg, "project-list")
    assert not pg.console_errors
