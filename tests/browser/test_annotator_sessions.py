"""The annotator on photos of mixed sizes, in headless Chromium: every asset keeps its own
document, stage and saves across rapid Prev/Next (also while a save and an IntelliBrush click
are pending) and the back button; the first save of an unlabeled asset is conditional (two
contexts race it: one wins, the other gets the conflict choice); a crash inside the annotator
shows the error boundary and the IndexedDB journal gives the edits back after a reload; exclude
clicks change the fallback's proposal; Fill fills only the clicked region of a photo.

Masks are compared through the API, pixel for pixel, with what the page held."""
from __future__ import annotations

import io
import re

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_util

from projects.synthetic import MIXED_SIZES, make_sample
from tests.browser.server import ApiClient, log_in


def _decode(rle: dict) -> np.ndarray:
    return mask_util.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")}).astype(bool)


def _encode(mask: np.ndarray) -> dict:
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _same_masks(a: list[dict], b: list[dict]) -> bool:
    if len(a) != len(b):
        return False
    return all(
        x["class_id"] == y["class_id"] and x["rle"]["size"] == y["rle"]["size"]
        and np.array_equal(_decode(x["rle"]), _decode(y["rle"]))
        for x, y in zip(a, b, strict=True)
    )


def _photo(width: int, height: int, seed: int) -> tuple[bytes, list]:
    """A synthetic scene (textured shapes, gradient background, noise) as an image file:
    JPEG for the 12 MP one, PNG otherwise. Returns (file bytes, instances)."""
    sample = make_sample(seed, width=width, height=height, max_objects=4)
    buf = io.BytesIO()
    big = width * height > 4_000_000
    Image.fromarray(sample.image).save(buf, format="JPEG" if big else "PNG", quality=90)
    return buf.getvalue(), sample.instances


def _project(api: ApiClient, name: str, images: list[tuple[str, bytes]]) -> tuple[int, list[dict], list[int]]:
    """A project with two classes and ``images`` uploaded in order; (project id, assets, class ids)."""
    r = api("POST", "/projects/", json={"name": name})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    class_ids = []
    for cname, color in (("thing", "#e11d48"), ("stuff", "#2563eb")):
        r = api("POST", f"/projects/{pid}/classes/", json={"name": cname, "color": color})
        assert r.status_code == 201, r.text
        class_ids.append(r.json()["id"])
    for fname, data in images:
        mime = "image/jpeg" if fname.endswith(".jpg") else "image/png"
        r = api("POST", f"/projects/{pid}/assets/", files={"files": (fname, data, mime)})
        assert r.status_code == 201, r.text
    assets = api("GET", f"/projects/{pid}/assets/", params={"page_size": 100}).json()["results"]
    assert [a["name"] for a in assets] == [f for f, _ in images]
    return pid, assets, class_ids


def _api_masks(pg, aid: int) -> list[dict]:
    return pg.request.get(f"/api/v1/assets/{aid}/masks/").json()["masks"]


def _client_masks(pg) -> list[dict]:
    return pg.evaluate("() => window.__tessera.masks()")


def _to_page(pg, x: float, y: float) -> tuple[float, float]:
    return tuple(pg.evaluate("([x, y]) => window.__tessera.imageToPage(x, y)", [x, y]))


def _drag(pg, a, b, steps: int = 12) -> None:
    pg.mouse.move(*_to_page(pg, *a))
    pg.mouse.down()
    pg.mouse.move(*_to_page(pg, *b), steps=steps)
    pg.mouse.up()


def _wait_open(pg, aid: int, size: tuple[int, int]) -> None:
    """Wait until the annotator shows asset ``aid``, and check its stage is that image's size."""
    pg.wait_for_function("(id) => window.__tessera && window.__tessera.assetId() === id", arg=aid)
    w, h = size
    assert pg.evaluate("() => window.__tessera.size()") == [w, h]
    stage = pg.evaluate(
        "() => { const s = document.querySelector('.stage'); const i = s.querySelector('img');"
        " return [s.style.width, s.style.height, i.naturalWidth, i.naturalHeight]; }")
    assert stage == [f"{w}px", f"{h}px", w, h]
    assert pg.get_by_test_id("error-boundary").count() == 0


def _console_errors(pg) -> list[str]:
    return pg.console_errors  # type: ignore[attr-defined]


@pytest.fixture
def mixed(tessera):
    """Four photos: 500x375 and 338x500 with saved masks, 320x240 and 4000x3000 unlabeled."""
    api = ApiClient(tessera.url)
    files, truth = [], []
    for i, (w, h) in enumerate(MIXED_SIZES):
        data, instances = _photo(w, h, seed=40 + i)
        files.append((f"{i + 1}-{w}x{h}.{'jpg' if w * h > 4_000_000 else 'png'}", data))
        truth.append(instances)
    pid, assets, class_ids = _project(api, "Mixed sizes", files)
    for asset, instances in zip(assets[:2], truth[:2], strict=True):
        masks = [{"class_id": class_ids[k % 2], "rle": _encode(inst.mask)} for k, inst in enumerate(instances)]
        r = api("PUT", f"/assets/{asset['id']}/masks/", json={"masks": masks, "base_revision": 0})
        assert r.status_code == 200, r.text
    return pid, assets, class_ids


def test_prev_next_across_mixed_sizes_keeps_every_asset_apart(page, login, shot, mixed):
    pg = page
    pid, assets, _ = mixed
    sizes = {a["id"]: (a["width"], a["height"]) for a in assets}
    ids = [a["id"] for a in assets]
    assert [sizes[i] for i in ids] == list(MIXED_SIZES)
    login(pg)
    pg.goto(f"/projects/{pid}/annotate/{ids[0]}?page=1&i=0")
    _wait_open(pg, ids[0], sizes[ids[0]])
    assert _same_masks(_client_masks(pg), _api_masks(pg, ids[0]))
    expected: dict[int, list[dict]] = {}
    # No stray square at the image's corner: the empty proposal canvas is not displayed.
    assert pg.evaluate("() => getComputedStyle(document.querySelector('.proposal-layer')).display") == "none"
    # Every visibility toggle says what it does.
    assert all(pg.locator(".palette .eye").evaluate_all("els => els.map(e => e.title)"))

    # 500x375: a brush stroke, then Next at once (its save is still pending).
    pg.keyboard.press("1")
    pg.keyboard.press("b")
    _drag(pg, (30, 30), (200, 60))
    assert pg.evaluate("() => window.__tessera.saveState()") == "dirty"
    expected[ids[0]] = _client_masks(pg)
    shot(pg, "landscape-edited")
    pg.keyboard.press("d")

    # 338x500 portrait with saved masks: a stroke, then an IntelliBrush click and Next while
    # the click is still being answered.
    _wait_open(pg, ids[1], sizes[ids[1]])
    assert _same_masks(_client_masks(pg), _api_masks(pg, ids[1]))
    pg.keyboard.press("2")
    _drag(pg, (20, 450), (300, 480))
    expected[ids[1]] = _client_masks(pg)
    pg.keyboard.press("i")
    with pg.expect_request(lambda r: "/intellibrush/" in r.url and r.method == "POST"):
        pg.mouse.click(*_to_page(pg, 170, 250))
    pg.keyboard.press("d")
    shot(pg, "after-portrait")

    # 320x240 unlabeled (the stage used to stay 500x338 here): a polygon.
    _wait_open(pg, ids[2], sizes[ids[2]])
    assert _client_masks(pg) == []
    assert pg.evaluate("() => window.__tessera.proposal()") is None
    pg.keyboard.press("p")
    for x, y in [(40, 40), (200, 50), (180, 200), (60, 180)]:
        pg.mouse.click(*_to_page(pg, x, y))
    pg.keyboard.press("Enter")
    expected[ids[2]] = _client_masks(pg)
    assert len(expected[ids[2]]) == 1
    shot(pg, "small-polygon")
    pg.keyboard.press("d")

    # 4000x3000: a stroke, then Prev, Prev, Prev as fast as keys go.
    _wait_open(pg, ids[3], sizes[ids[3]])
    pg.keyboard.press("b")
    pg.get_by_label("Brush size", exact=True).fill("120")
    _drag(pg, (500, 2500), (3500, 2600))
    expected[ids[3]] = _client_masks(pg)
    shot(pg, "photo-12mp")
    for _ in range(3):
        pg.keyboard.press("a")
        pg.wait_for_timeout(60)
    # Wherever the rapid presses landed, walk back to the first asset.
    for _ in range(4):
        current = pg.evaluate("() => window.__tessera ? window.__tessera.assetId() : null")
        if current == ids[0]:
            break
        if current is None:
            pg.wait_for_function("() => !!window.__tessera")
            continue
        pg.keyboard.press("a")
        pg.wait_for_function("(id) => window.__tessera && window.__tessera.assetId() !== id", arg=current)
    _wait_open(pg, ids[0], sizes[ids[0]])
    assert _same_masks(_client_masks(pg), expected[ids[0]])
    shot(pg, "back-to-first")

    # The back button: forward to the portrait, edit, go back: the edit is saved, not lost.
    pg.keyboard.press("d")
    _wait_open(pg, ids[1], sizes[ids[1]])
    assert _same_masks(_client_masks(pg), expected[ids[1]])
    pg.keyboard.press("1")
    pg.keyboard.press("b")
    _drag(pg, (30, 100), (300, 120))
    expected[ids[1]] = _client_masks(pg)
    pg.go_back()
    _wait_open(pg, ids[0], sizes[ids[0]])

    for aid in ids:
        pg.wait_for_function(
            "([id, n]) => fetch(`/api/v1/assets/${id}/masks/`).then(r => r.json())"
            ".then(b => b.masks.length === n)", arg=[aid, len(expected[aid])])
        assert _same_masks(_api_masks(pg, aid), expected[aid]), f"asset {aid} ({sizes[aid]})"
    assert pg.locator(".annotator").count() == 1
    assert _console_errors(pg) == []


def _open_second_context(browser, tessera):
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=tessera.url)
    ctx.set_default_timeout(60_000)
    pg = ctx.new_page()
    pg.console_errors = []  # type: ignore[attr-defined]
    pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))  # type: ignore[attr-defined]
    log_in(pg)
    return ctx, pg


def test_two_contexts_race_the_first_save_of_an_unlabeled_asset(page, login, shot, browser, tessera):
    api = ApiClient(tessera.url)
    data, _ = _photo(500, 375, seed=7)
    pid, assets, _ = _project(api, "Race", [("race.png", data)])
    aid = assets[0]["id"]
    first = page
    login(first)
    ctx2, second = _open_second_context(browser, tessera)
    try:
        for pg in (first, second):
            pg.goto(f"/projects/{pid}/annotate/{aid}")
            _wait_open(pg, aid, (500, 375))
            pg.keyboard.press("1")
            pg.keyboard.press("b")
        # Each sees that the other has the asset open (the same user in two tabs here).
        for pg in (first, second):
            pg.get_by_test_id("presence").filter(has_text="Also open by e2e").wait_for()
        shot(first, "presence")
        _drag(first, (40, 40), (300, 60))
        _drag(second, (40, 300), (400, 320))
        mine, theirs = _client_masks(first), _client_masks(second)
        with first.expect_request(lambda r: r.method == "PUT" and "/masks/" in r.url) as put1:
            first.keyboard.press("Control+s")
        assert put1.value.post_data_json["base_revision"] == 0
        first.locator("[data-save-state='saved']").wait_for()
        with second.expect_request(lambda r: r.method == "PUT" and "/masks/" in r.url) as put2:
            second.keyboard.press("Control+s")
        assert put2.value.post_data_json["base_revision"] == 0
        keep = second.get_by_role("button", name="Keep mine (overwrite)")
        keep.wait_for()
        assert second.get_by_role("button", name="Load theirs").is_visible()
        shot(second, "conflict-choice")
        assert _same_masks(_api_masks(first, aid), mine)  # the second save changed nothing
        assert second.evaluate("() => window.__tessera.saveState()") == "error"
        # The loser keeps their edits and chooses to overwrite: conditional on revision 1.
        with second.expect_request(lambda r: r.method == "PUT" and "/masks/" in r.url) as put3:
            keep.click()
        assert put3.value.post_data_json["base_revision"] == 1
        second.locator("[data-save-state='saved']").wait_for()
        assert _same_masks(_api_masks(first, aid), theirs)
        revisions = first.request.get(f"/api/v1/assets/{aid}/masks/revisions/").json()["results"]
        assert sorted(r["number"] for r in revisions) == [1, 2]
        shot(second, "kept-mine")

        # History: both revisions with who and how many objects; preview the first; restore it.
        second.get_by_role("button", name=re.compile("^History")).click()
        rows = second.locator(".revision-list li")
        rows.nth(1).wait_for()
        assert rows.count() == 2
        assert "current" in rows.filter(has_text="#2").inner_text()
        assert "e2e" in rows.filter(has_text="#1").inner_text()
        rows.filter(has_text="#1").get_by_role("button", name="Preview").click()
        second.get_by_test_id("revision-preview").wait_for()
        shot(second, "history-preview")
        second.once("dialog", lambda d: d.accept())
        rows.filter(has_text="#1").get_by_role("button", name="Restore").click()
        second.wait_for_function(
            "(n) => fetch(`/api/v1/assets/${n}/masks/`).then(r => r.json()).then(b => b.revision === 3)", arg=aid)
        # The annotator reopened the asset on the restored revision.
        second.wait_for_function(
            "(counts) => window.__tessera && window.__tessera.masks().length === 1"
            " && window.__tessera.masks()[0].rle.counts === counts", arg=mine[0]["rle"]["counts"])
        assert _same_masks(_client_masks(second), mine)
        assert _same_masks(_api_masks(second, aid), mine)
        shot(second, "history-restored")
        assert _console_errors(second) == []
    finally:
        ctx2.close()


def test_a_crash_shows_the_boundary_and_the_journal_restores_the_edits(page, login, shot, tessera):
    pg = page
    api = ApiClient(tessera.url)
    data, _ = _photo(338, 500, seed=8)
    pid, assets, _ = _project(api, "Crash", [("crash.png", data)])
    aid = assets[0]["id"]
    login(pg)
    # Saves fail (server unreachable) while the edits are made and the annotator crashes.
    pg.route(re.compile(r".*/api/v1/assets/\d+/masks/$"),
             lambda route: route.abort() if route.request.method == "PUT" else route.continue_())
    pg.goto(f"/projects/{pid}/annotate/{aid}")
    _wait_open(pg, aid, (338, 500))
    header_height = pg.locator(".annotator-bar").bounding_box()["height"]
    pg.keyboard.press("1")
    pg.keyboard.press("b")
    _drag(pg, (30, 60), (300, 80))
    pg.keyboard.press("n")  # the polygon is a new object
    pg.keyboard.press("p")
    for x, y in [(60, 200), (250, 220), (200, 400)]:
        pg.mouse.click(*_to_page(pg, x, y))
    pg.keyboard.press("Enter")
    drawn = _client_masks(pg)
    assert len(drawn) == 2
    pg.locator("[data-save-state='error']").wait_for()
    # A save error does not wrap the header onto a second line.
    assert pg.locator(".annotator-bar").bounding_box()["height"] == header_height
    shot(pg, "save-failing")
    pg.wait_for_function(
        """(id) => new Promise((ok) => { const r = indexedDB.open('tessera-journal', 1);
             r.onsuccess = () => { const g = r.result.transaction('edits').objectStore('edits').get(id);
               g.onsuccess = () => { r.result.close(); ok(!!g.result && g.result.masks.length === 2); }; }; })""",
        arg=aid)
    pg.evaluate("() => window.__tessera.crash('Injected failure for the test')")
    boundary = pg.get_by_test_id("error-boundary")
    boundary.wait_for()
    assert "Injected failure for the test" in boundary.inner_text()
    assert boundary.get_by_role("link", name="Back to the project").get_attribute("href") == f"/projects/{pid}"
    shot(pg, "error-boundary")
    assert _api_masks(pg, aid) == []

    pg.unroute(re.compile(r".*/api/v1/assets/\d+/masks/$"))
    pg.reload()
    offer = pg.get_by_test_id("journal-offer")
    offer.wait_for()
    shot(pg, "journal-offer")
    assert _client_masks(pg) == []
    offer.get_by_role("button", name="Restore them").click()
    pg.wait_for_function("() => window.__tessera && window.__tessera.masks().length === 2")
    assert _same_masks(_client_masks(pg), drawn)
    pg.locator("[data-save-state='saved']").wait_for()
    assert _same_masks(_api_masks(pg, aid), drawn)
    shot(pg, "restored-and-saved")
    # Once saved the journal entry is gone: a reload offers nothing.
    pg.reload()
    _wait_open(pg, aid, (338, 500))
    assert pg.get_by_test_id("journal-offer").count() == 0


def _interior(mask: np.ndarray) -> tuple[int, int]:
    d = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(d)), d.shape)
    return int(x), int(y)


def test_exclude_clicks_change_the_fallback_proposal(page, login, shot, tessera):
    pg = page
    api = ApiClient(tessera.url)
    data, instances = _photo(500, 375, seed=40)
    pid, assets, _ = _project(api, "Exclude", [("exclude.png", data)])
    aid = assets[0]["id"]
    login(pg)
    pg.goto(f"/projects/{pid}/annotate/{aid}")
    _wait_open(pg, aid, (500, 375))
    pg.keyboard.press("i")
    target = max(instances, key=lambda i: i.mask.sum()).mask
    inc = _interior(target)

    def click(x, y, **kw):
        with pg.expect_response(lambda r: "/intellibrush/" in r.url) as resp:
            pg.mouse.click(*_to_page(pg, x, y), **kw)
        assert resp.value.ok, resp.value.text()
        pg.wait_for_function("() => !!window.__tessera.proposal() && !document.querySelector('.ib-panel [role=status]')")
        return resp.value.request.post_data_json, _decode(resp.value.json()["rle"])

    _, first = click(*inc)
    assert first[inc[1], inc[0]]
    # The fallback's install hint (a long URL) stays inside the tool panel.
    assert pg.evaluate("() => { const d = document.querySelector('.ib-detail'), t = document.querySelector('.toolbox');"
                       " return d.getBoundingClientRect().right <= t.getBoundingClientRect().right; }")
    shot(pg, "include")
    # An exclude point inside the proposal, away from the include click.
    ys, xs = np.nonzero(cv2.erode(first.astype(np.uint8), np.ones((9, 9), np.uint8)))
    far = int(np.argmax(np.hypot(xs - inc[0], ys - inc[1])))
    exc = (int(xs[far]), int(ys[far]))
    pg.keyboard.down("Alt")
    sent, second = click(*exc)
    pg.keyboard.up("Alt")
    assert [p[2] for p in sent["points"]] == [1, 0]
    assert not second[exc[1], exc[0]] and second[inc[1], inc[0]]
    assert (first & ~second).sum() > 0
    shot(pg, "alt-exclude")
    # A right-click excludes too (and does not erase the proposal).
    ys, xs = np.nonzero(cv2.erode(second.astype(np.uint8), np.ones((9, 9), np.uint8)))
    far = int(np.argmax(np.hypot(xs - inc[0], ys - inc[1])))
    exc2 = (int(xs[far]), int(ys[far]))
    sent, third = click(*exc2, button="right")
    assert [p[2] for p in sent["points"]] == [1, 0, 0]
    assert third.sum() > 0 and third[inc[1], inc[0]] and not third[exc2[1], exc2[0]]
    shot(pg, "right-exclude")
    assert _console_errors(pg) == []


def test_fill_on_a_photo_fills_only_the_clicked_region(page, login, shot, tessera):
    pg = page
    api = ApiClient(tessera.url)
    data, instances = _photo(500, 375, seed=42)
    pid, assets, class_ids = _project(api, "Fill", [("fill.png", data)])
    aid = assets[0]["id"]
    login(pg)
    pg.goto(f"/projects/{pid}/annotate/{aid}")
    _wait_open(pg, aid, (500, 375))
    big = sorted(instances, key=lambda i: -int(i.mask.sum()))
    pg.keyboard.press("1")
    pg.keyboard.press("f")
    pg.get_by_label("Fill tolerance", exact=True).wait_for()
    x, y = _interior(big[0].mask)
    pg.mouse.click(*_to_page(pg, x, y))
    masks = _client_masks(pg)
    assert len(masks) == 1
    filled = _decode(masks[0]["rle"])
    shot(pg, "fill-one")
    assert filled[y, x]
    # Only the clicked object: nearly all filled pixels are on it, far from the whole image.
    grown = cv2.dilate(big[0].mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert (filled & ~grown).sum() <= 0.02 * filled.sum()
    assert filled.sum() < 0.5 * filled.size
    assert (filled & big[0].mask).sum() >= 0.9 * big[0].mask.sum()  # and the object, whole

    # A second fill with the other class on another object leaves the first one as it was.
    pg.keyboard.press("2")
    x2, y2 = _interior(big[1].mask)
    pg.mouse.click(*_to_page(pg, x2, y2))
    masks = _client_masks(pg)
    assert len(masks) == 2
    assert np.array_equal(_decode(masks[0]["rle"]), filled)
    assert masks[1]["class_id"] == class_ids[1]
    # Filling on the first object with the other class does not take it over unasked.
    pg.mouse.click(*_to_page(pg, x, y))
    assert _same_masks(_client_masks(pg), masks)
    pg.get_by_role("alert").filter(has_text="Fill over other objects").wait_for()
    shot(pg, "fill-two")
    assert _console_errors(pg) == []
