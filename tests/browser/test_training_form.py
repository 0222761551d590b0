"""The training form at 1280x800: the pretrained choice defaults to a source whose weights
are on the server and marks the others; a run that fails (weights missing) shows its whole
message wrapped inside the page; the form keeps its settings after the failure (and a
reload); runs are numbered per project."""
from __future__ import annotations

import re

from tests.browser.training_fixtures import seed_synthetic_project

FORM = "form[aria-label='Training workflow']"


def _fits(pg, selector: str) -> bool:
    """The element neither overflows its own box nor the viewport's width."""
    return pg.evaluate(
        """(sel) => { const e = document.querySelector(sel); const r = e.getBoundingClientRect();
             return e.scrollWidth <= e.clientWidth + 1 && r.right <= window.innerWidth
                    && document.documentElement.scrollWidth <= window.innerWidth; }""", selector)


def test_pretrained_default_failed_run_message_and_kept_settings(browser, tessera, login, shot):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=tessera.url)
    context.set_default_timeout(60_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    login(pg)
    project = seed_synthetic_project(pg, "Form settings", images=6, val_every=3)
    pid = project["id"]

    pg.goto(f"/projects/{pid}/training")
    pretrained = pg.locator(f"{FORM} [name=pretrained]")
    pg.locator(f"{FORM} [name=variant] option[value=b0]").wait_for(state="attached")
    pg.locator(f"{FORM} [name=variant]").select_option("b0")
    # No weights on this server: "none" is chosen, the published sources are marked.
    assert pretrained.input_value() == "none"
    imagenet = pg.locator(f"{FORM} [name=pretrained] option[value=imagenet]")
    assert "weights not on this server" in imagenet.inner_text()
    assert imagenet.get_attribute("data-local") == "no"
    assert pg.locator(f"{FORM} [name=pretrained] option[value=none]").get_attribute("data-local") == "yes"

    # Ask for ImageNet weights anyway: the run fails on the worker, saying where it looked.
    pretrained.select_option("imagenet")
    pg.locator(f"{FORM} [name=name]").fill("needs imagenet")
    pg.locator(f"{FORM} [name=steps]").fill("7")
    pg.locator(f"{FORM} [name=batch_size]").fill("2")
    pg.get_by_role("button", name="Run Training").click()
    pg.wait_for_url(re.compile(r".*/training/runs/\d+$"), timeout=30_000)
    pg.locator(".training-run[data-status=failed]").wait_for(timeout=180_000)
    pg.get_by_role("heading", name=re.compile(r"^Run 1\b")).wait_for()  # first run of the project
    report = pg.locator("pre.report.error")
    assert "nvidia/mit-b0" in report.inner_text() and "pretrained='none'" in report.inner_text()
    report.scroll_into_view_if_needed()
    assert _fits(pg, "pre.report.error"), "the failure message overflows the page"
    shot(pg, "failed-run-message")

    # Back on the Training page the form still holds what was submitted.
    pg.get_by_role("link", name="← Training").click()
    row = pg.locator("[data-testid=run-row][data-status=failed]")
    row.wait_for()
    assert row.get_by_role("link").inner_text() == "Run 1"
    assert _fits(pg, "table.runs"), "the run list overflows the page"

    def kept() -> None:
        assert pg.locator(f"{FORM} [name=variant]").input_value() == "b0"
        assert pretrained.input_value() == "imagenet"
        assert pg.locator(f"{FORM} [name=name]").input_value() == "needs imagenet"
        assert pg.locator(f"{FORM} [name=steps]").input_value() == "7"

    imagenet.wait_for(state="attached")  # the model list has loaded
    kept()
    shot(pg, "form-kept-after-failure")
    pg.reload()
    imagenet.wait_for(state="attached")  # the model list has loaded
    kept()
    # "Reset to defaults" forgets them.
    pg.get_by_role("button", name="Reset to defaults").click()
    assert pg.locator(f"{FORM} [name=steps]").input_value() != "7"
    assert not errors, errors
    context.close()
