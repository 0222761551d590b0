"""End to end in headless Chromium against a real node (daphne + Celery worker + Redis):
seed a labelled synthetic project through the API, see the API's validation message in
the workflow builder, start a tiny SegFormer training from the page, watch the loss curve
grow without reloading (also across a dropped websocket), cancel it, see a run started
through the API appear on the open Training page and complete, and open its evaluation
view (predicted masks over the validation images, per-class table, slider)."""
from __future__ import annotations

import re
import time

from tests.browser.training_fixtures import (
    api_get,
    seed_synthetic_project,
    start_run_via_api,
    wait_for_run,
)

FORM = "form[aria-label='Training workflow']"


def _points(pg, chart: str) -> int:
    return int(pg.get_by_test_id(chart).get_attribute("data-points") or 0)


def _series_steps(pg, kind: str) -> list[int]:
    return pg.evaluate(f"() => (window.__tesseraRunSeries?.{kind} ?? []).map(p => p.step)")


class _Clock:
    """Prints how long each phase took (pytest -s), to keep the test within its budget."""

    def __init__(self) -> None:
        self.t0 = self.last = time.monotonic()

    def __call__(self, phase: str) -> None:
        now = time.monotonic()
        print(f"[training e2e] {phase}: {now - self.last:.1f} s (total {now - self.t0:.1f} s)")
        self.last = now


def _fill(pg, name: str, value: str) -> None:
    pg.locator(f"{FORM} [name={name}]").fill(value)


def test_training_from_the_page(page, login, shot, tessera):
    pg = page
    clock = _Clock()
    login(pg)
    project = seed_synthetic_project(pg, "E2E training shapes")
    clock("login and seed")
    pid = project["id"]

    # -- the builder: defaults from the model catalogue, and the API's 400 details ----------
    pg.goto(f"/projects/{pid}/training")
    pg.get_by_role("heading", name="New training").wait_for()
    pg.locator(f"{FORM} [name=resolution] option", has_text="64x64").first.wait_for(state="attached")
    pg.locator(f"{FORM} [name=variant]").select_option("tiny")
    pg.locator(f"{FORM} [name=resolution]").select_option("64x64")
    pg.locator(f"{FORM} [name=pretrained]").select_option("none")
    _fill(pg, "steps", "0")
    pg.get_by_role("button", name="Run Training").click()
    problems = pg.get_by_test_id("builder-problems")
    problems.wait_for()
    assert "steps must be >= 1" in problems.inner_text()
    # the message is also shown next to the field it is about
    assert "steps must be >= 1" in pg.locator(".field.invalid", has=pg.locator("[name=steps]")).inner_text()
    shot(pg, "builder-validation")
    clock("builder validation")

    # -- start a long tiny run from the page, watch the curve grow live -----------------------
    _fill(pg, "name", "long tiny run")
    _fill(pg, "steps", "5000")
    _fill(pg, "batch_size", "8")
    _fill(pg, "lr", "0.003")
    _fill(pg, "log_interval", "2")
    _fill(pg, "eval_interval", "40")
    pg.get_by_role("button", name="Run Training").click()
    pg.wait_for_url(re.compile(r".*/training/runs/\d+$"), timeout=30_000)
    run_a = int(pg.url.rsplit("/", 1)[1])
    pg.wait_for_function("() => Number(document.querySelector('[data-testid=chart-loss]')?.dataset.points) >= 3",
                         timeout=90_000)
    first = _points(pg, "chart-loss")
    pg.wait_for_function(
        f"() => Number(document.querySelector('[data-testid=chart-loss]').dataset.points) >= {first + 5}",
        timeout=60_000)
    second = _points(pg, "chart-loss")
    assert second > first, "the loss curve did not grow without a reload"
    assert "step" in pg.get_by_test_id("run-step").inner_text()
    assert pg.get_by_test_id("socket-state").inner_text().strip() == "● live"
    shot(pg, "run-live")
    clock("run started, curve grew")

    # -- drop the websocket: the client reconnects with last_step and keeps every step once --
    pg.evaluate("() => window.__tesseraRunSocket.dropConnection()")
    after_drop = _points(pg, "chart-loss")
    pg.wait_for_function(
        f"() => Number(document.querySelector('[data-testid=chart-loss]').dataset.points) >= {after_drop + 5}",
        timeout=60_000)
    assert len(pg.evaluate("() => window.__tesseraRunSocket.history")) >= 2
    steps = _series_steps(pg, "train")
    assert steps == sorted(set(steps)), "duplicate or unordered steps after the reconnect"
    # no gaps: the live series holds exactly the server's points up to its last step
    server_steps = [p["step"] for p in api_get(pg, f"/trainings/{run_a}/metrics/?kind=train")]
    assert steps == [s for s in server_steps if s <= steps[-1]]

    # -- cancel it ------------------------------------------------------------------------------
    pg.get_by_role("button", name="Cancel run").click()
    pg.locator(".training-run[data-status=cancelled]").wait_for(timeout=60_000)
    assert "Cancelled" in pg.get_by_test_id("run-message").inner_text()
    shot(pg, "run-cancelled")
    clock("reconnect and cancel")

    # -- a run started through the API shows up on the open Training page and completes --------
    pg.get_by_role("link", name="← Training").click()
    pg.get_by_test_id("run-list").wait_for()
    rows_before = pg.get_by_test_id("run-row").count()
    run_b = start_run_via_api(pg, pid, "api run", steps=60, log_interval=2, eval_interval=20)["id"]
    row = pg.locator(f"[data-testid=run-row][data-run-id='{run_b}']")
    row.wait_for(timeout=10_000)  # polled in: no reload
    assert pg.get_by_test_id("run-row").count() == rows_before + 1
    pg.locator(f"[data-testid=run-row][data-run-id='{run_b}'][data-status=completed]").wait_for(timeout=120_000)
    assert pg.locator(f"[data-testid=run-row][data-run-id='{run_a}'][data-status=cancelled]").count() == 1
    pg.get_by_test_id("artifact-list").get_by_role("link", name="Deploy").first.wait_for(timeout=10_000)
    shot(pg, "runs-list")
    clock("API run appeared and completed")

    # -- the finished run: curves, evaluation view, artifact --------------------------------------
    run_b_number = api_get(pg, f"/trainings/{run_b}/")["number"]
    assert run_b_number == 2  # the project's second run, whatever its id
    row.get_by_role("link", name=f"Run {run_b_number}", exact=True).click()
    pg.get_by_test_id("evaluation-view").wait_for(timeout=30_000)
    metrics = api_get(pg, f"/trainings/{run_b}/metrics/")
    n_train = sum(1 for m in metrics if m["kind"] == "train")
    evals = [m for m in metrics if m["kind"] == "eval"]
    assert n_train >= 25 and len(evals) == 3
    # the loss chart holds the train loss and, next to it, the validation loss of each evaluation
    assert all(m["values"]["val_loss"] > 0 for m in evals)
    pg.wait_for_function(
        "() => Number(document.querySelector('[data-testid=chart-loss]').dataset.points) === "
        f"{n_train + len(evals)}")
    # three eval series (mIoU, F1, pixel accuracy) x three evaluations
    assert _points(pg, "chart-eval") == 3 * len(evals)
    samples = pg.get_by_test_id("sample-prediction")
    assert samples.count() == len(evals[-1]["values"]["samples"]) > 0
    # the sample images are the project's val assets, drawn under the predicted masks
    first_img = samples.first.locator("img")
    assert int(re.search(r"/assets/(\d+)/", first_img.get_attribute("src")).group(1)) in project["val_assets"]
    pg.wait_for_function("() => [...document.querySelectorAll('[data-testid=sample-prediction] img')]"
                         ".every(i => i.complete && i.naturalWidth > 0)")
    table = pg.get_by_test_id("per-class-table")
    for name in ("background", "circle", "rectangle"):
        assert name in table.inner_text()
    miou_last = pg.get_by_test_id("eval-miou").inner_text()
    assert miou_last == f"{evals[-1]['values']['miou'] * 100:.1f}%"
    # the slider goes back to the first evaluation
    slider = pg.get_by_label("Evaluation", exact=True)
    slider.fill("0")
    pg.get_by_text(f"Evaluation 1 of {len(evals)} — step {evals[0]['step']}").wait_for()
    assert pg.get_by_test_id("eval-miou").inner_text() == f"{evals[0]['values']['miou'] * 100:.1f}%"
    if evals[-1]["values"].get("confusion"):
        assert pg.get_by_test_id("confusion-matrix").locator("tbody tr").count() == len(evals[-1]["values"]["confusion"])
    slider.fill(str(len(evals) - 1))
    pg.get_by_text(f"Evaluation {len(evals)} of {len(evals)}").wait_for()
    shot(pg, "run-evaluation-samples")
    # ground truth / prediction / both, and one sample enlarged
    pg.get_by_role("radio", name="Ground truth").check()
    pg.locator("[data-testid=sample-prediction][data-show=truth][data-truth=yes]").first.wait_for()
    pg.get_by_role("radio", name="Both").check()
    pg.get_by_role("button", name=re.compile(r"^Enlarge validation image")).first.click()
    dialog = pg.get_by_role("dialog", name="Enlarged validation image")
    big = dialog.locator("[data-testid=sample-prediction][data-show=both][data-truth=yes]")
    big.wait_for()
    assert big.bounding_box()["width"] > 3 * samples.first.bounding_box()["width"] * 0.5
    assert big.bounding_box()["width"] >= 600
    shot(pg, "run-evaluation-enlarged-both")
    pg.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    pg.get_by_role("radio", name="Prediction").check()
    table.scroll_into_view_if_needed()
    pg.get_by_test_id("artifact").get_by_role("link", name="Deploy this model").wait_for()
    shot(pg, "run-evaluation-tables")
    clock("evaluation view")
    assert not pg.console_errors, pg.console_errors  # type: ignore[attr-defined]
    assert wait_for_run(pg, run_b, ("completed",), timeout_s=1)["artifact"] is not None
