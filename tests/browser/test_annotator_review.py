"""Review in the annotator: the side panel shows the asset's review status and the rejection
comment, and an annotator/owner accepts or rejects it there (pending edits are saved first)."""
from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.server import ApiClient
from tests.browser.test_annotator_sessions import (
    _api_masks,
    _client_masks,
    _console_errors,
    _drag,
    _photo,
    _project,
    _same_masks,
    _wait_open,
)


def test_reject_and_accept_from_the_annotator(page, login, shot, tessera):
    api = ApiClient(tessera.url)
    data, _ = _photo(400, 300, seed=11)
    pid, assets, _ = _project(api, "Review here", [("one.png", data)])
    aid = assets[0]["id"]
    pg = page
    login(pg)
    pg.goto(f"/projects/{pid}/annotate/{aid}")
    _wait_open(pg, aid, (400, 300))
    panel = pg.get_by_role("region", name="Review")
    panel.get_by_test_id("annotator-review-status").filter(has_text="Unlabeled").wait_for()
    panel.get_by_text("Label the asset (save its masks) to review it.").wait_for()

    pg.keyboard.press("1")
    pg.keyboard.press("b")
    _drag(pg, (40, 40), (300, 60))
    pg.locator("[data-save-state='saved']").wait_for()
    panel.get_by_test_id("annotator-review-status").filter(has_text="Labeled").wait_for()
    panel.get_by_role("button", name="Reject").click()
    panel.get_by_role("alert").filter(has_text="A rejection needs a comment.").wait_for()
    # A pending edit is saved before the decision.
    _drag(pg, (40, 200), (300, 220))
    panel.get_by_label("Review comment").fill("The edge is off")
    panel.get_by_role("button", name="Reject").click()
    panel.get_by_test_id("annotator-review-status").filter(has_text="Rejected").wait_for()
    asset = pg.request.get(f"/api/v1/assets/{aid}/").json()
    assert (asset["status"], asset["review_comment"]) == ("rejected", "The edge is off")
    assert _same_masks(_api_masks(pg, aid), _client_masks(pg))
    assert pg.request.get(f"/api/v1/assets/{aid}/").json()["status"] == "rejected"  # saved before

    # Opened again, the annotator shows the rejection and its comment.
    pg.reload()
    _wait_open(pg, aid, (400, 300))
    panel.get_by_test_id("annotator-review-comment").filter(has_text="Rejected: The edge is off").wait_for()
    shot(pg, "annotator-rejected")
    panel.get_by_role("button", name="Accept").click()
    panel.get_by_test_id("annotator-review-status").filter(has_text="Reviewed").wait_for()
    assert pg.request.get(f"/api/v1/assets/{aid}/").json()["status"] == "reviewed"
    shot(pg, "annotator-reviewed")
    assert _console_errors(pg) == []


def test_the_owner_marks_the_ignore_class_and_the_annotator_labels_it(page, login, shot, tessera):
    api = ApiClient(tessera.url)
    data, _ = _photo(320, 240, seed=12)
    pid, assets, (thing, stuff) = _project(api, "Void here", [("void.png", data)])
    pg = page
    login(pg)
    pg.goto(f"/projects/{pid}/classes")
    pg.get_by_test_id("ignore-explanation").filter(has_text="left out of training and evaluation").wait_for()
    pg.get_by_label("Ignore class stuff (void)").click()  # checked once the server has it
    expect(pg.get_by_label("Ignore class stuff (void)")).to_be_checked()
    # One per project: the other class cannot be marked while stuff is the ignore class.
    ignore_thing = pg.get_by_label("Ignore class thing (void)")
    expect(ignore_thing).to_be_disabled()
    assert not ignore_thing.is_checked()
    shot(pg, "class-list-with-ignore")
    classes = {c["id"]: c["is_ignore"] for c in pg.request.get(f"/api/v1/projects/{pid}/classes/").json()}
    assert classes == {thing: False, stuff: True}

    pg.goto(f"/projects/{pid}/annotate/{assets[0]['id']}")
    _wait_open(pg, assets[0]["id"], (320, 240))
    palette = pg.locator(".palette li")
    palette.filter(has_text="stuff").locator(".ignore-tag").wait_for()
    assert palette.filter(has_text="thing").locator(".ignore-tag").count() == 0
    assert "repeating-linear-gradient" in palette.filter(has_text="stuff").locator(".swatch").get_attribute("style")
    shot(pg, "annotator-ignore-class")

    # Unmarked again, it is an ordinary class.
    pg.goto(f"/projects/{pid}/classes")
    pg.get_by_label("Ignore class stuff (void)").click()
    expect(pg.get_by_label("Ignore class stuff (void)")).not_to_be_checked()
    expect(pg.get_by_label("Ignore class thing (void)")).to_be_enabled()
    assert not any(c["is_ignore"] for c in pg.request.get(f"/api/v1/projects/{pid}/classes/").json())
    assert _console_errors(pg) == []
