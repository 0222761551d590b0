"""Browser fixtures: one real Tessera node per session (see server.py) and headless
Debian Chromium driven by Playwright. Screenshots go to .test-artifacts/screenshots/."""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.server import (
    TesseraServer,
    ensure_frontend_built,
    log_in,
    start_server,
)

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("TESSERA_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / ".test-artifacts" / "screenshots"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def tessera(tmp_path_factory) -> Iterator[TesseraServer]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (run scripts/ensure_chromium.sh)")
    if shutil.which("npm") is None and not (ROOT / "frontend" / "dist" / "index.html").exists():
        pytest.skip("npm is missing and frontend/dist is not built")
    ensure_frontend_built()
    server = start_server(tmp_path_factory.mktemp("tessera-e2e"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser, tessera):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=tessera.url)
    # Generous waits: CI's 2 cores also run the server, a worker and training here.
    context.set_default_timeout(60_000)
    pg = context.new_page()
    pg.console_errors = []  # type: ignore[attr-defined]
    pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))  # type: ignore[attr-defined]
    yield pg
    context.close()


@pytest.fixture
def shot(request):
    """shot(page, "step-name") saves .test-artifacts/screenshots/<test>/<nn>-<step>.png."""
    folder = SCREENSHOTS / request.node.name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    counter = {"n": 0}

    def take(pg, name: str) -> Path:
        counter["n"] += 1
        path = folder / f"{counter['n']:02d}-{name}.png"
        pg.screenshot(path=str(path))
        return path

    return take


@pytest.fixture
def login():
    return log_in
