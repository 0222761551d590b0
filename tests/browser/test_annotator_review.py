"""Review in the annotator: the side panel shows the asset's review status and the rejection
comment, and an annotator/owner accepts or rejects it there (pending edits are saved first)."""
from __future__ import annotations

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
