"""End to end in headless Chromium: log in, create a project and classes, upload an image
(and a bad file), label it with brush, eraser, polygon and IntelliBrush, undo/redo, save,
reload, and check that the masks read back through the API are the ones drawn, pixel for
pixel. Geometry is checked against shapes computed here, independently of the frontend."""
from __future__ import annotations

import re

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_util

W, H = 640, 480


def _test_image(path) -> None:
    """Grey background, a red disc (IntelliBrush target) and a blue square."""
    img = Image.new("RGB", (W, H), (128, 128, 128))
    d = ImageDraw.Draw(img)
    d.ellipse([90, 270, 210, 390], fill=(220, 30, 30))
    d.rectangle([420, 60, 520, 160], fill=(30, 40, 200))
    img.save(path)


def _instances(masks: list[dict]) -> list[tuple[int, np.ndarray]]:
    out = []
    for m in masks:
        rle = {"size": m["rle"]["size"], "counts": m["rle"]["counts"].encode("ascii")}
        assert rle["size"] == [H, W]
        out.append((m["class_id"], mask_util.decode(rle).astype(bool)))
    return out


def _class_map(masks: list[dict]) -> np.ndarray:
    """H x W class ids (0 = none); also asserts that objects do not overlap."""
    cmap = np.zeros((H, W), dtype=np.int64)
    seen = np.zeros((H, W), dtype=bool)
    for class_id, m in _instances(masks):
        assert not (seen & m).any(), "objects overlap"
        seen |= m
        cmap[m] = class_id
    return cmap


def _dist_to_segment(ax, ay, bx, by) -> np.ndarray:
    """Distance of every pixel centre to the segment a-b (H x W)."""
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    dx, dy = bx - ax, by - ay
    len2 = dx * dx + dy * dy
    t = np.clip(((xx - ax) * dx + (yy - ay) * dy) / len2, 0, 1) if len2 else np.zeros_like(xx)
    return np.hypot(xx - (ax + t * dx), yy - (ay + t * dy))


def _client_masks(pg) -> list[dict]:
    return pg.evaluate("() => window.__tessera.masks()")


def _to_page(pg, x: float, y: float) -> tuple[float, float]:
    px, py = pg.evaluate("([x, y]) => window.__tessera.imageToPage(x, y)", [x, y])
    return px, py


def _scale(pg) -> float:
    return pg.evaluate("() => window.__tessera.view().scale")


def _drag(pg, a: tuple[float, float], b: tuple[float, float], steps: int = 25) -> None:
    pg.mouse.move(*_to_page(pg, *a))
    pg.mouse.down()
    pg.mouse.move(*_to_page(pg, *b), steps=steps)
    pg.mouse.up()


def _click(pg, x: float, y: float, **kw) -> None:
    pg.mouse.click(*_to_page(pg, x, y), **kw)


def _set_range(pg, label: str, value: int) -> None:
    pg.get_by_label(label, exact=True).fill(str(value))


def test_label_an_image_end_to_end(page, login, shot, tessera, tmp_path):
    pg = page
    image_path = tmp_path / "shapes.png"
    _test_image(image_path)
    bad_path = tmp_path / "notes.png"
    bad_path.write_bytes(b"this is not an image\n" * 10)

    # -- log in, project, classes ------------------------------------------------------------
    login(pg)
    assert pg.title().startswith("Projects")
    shot(pg, "projects")
    pg.get_by_label("Name").fill("E2E shapes")
    pg.get_by_role("button", name="Create project").click()
    pg.wait_for_url(re.compile(r".*/projects/\d+$"))
    project_id = int(pg.url.rstrip("/").rsplit("/", 1)[1])
    pg.get_by_role("link", name="Classes").click()
    for name in ("disc", "square"):
        pg.get_by_label("Class name").fill(name)
        pg.get_by_role("button", name="Add class").click()
        pg.get_by_label(f"Name of class {name}").wait_for()
    classes = pg.request.get(f"/api/v1/projects/{project_id}/classes/").json()
    class_ids = {c["name"]: c["id"] for c in classes}
    shot(pg, "classes")

    # -- upload a good image and a bad file ---------------------------------------------------
    pg.get_by_role("link", name="Assets").click()
    pg.get_by_test_id("upload-input").set_input_files([str(image_path), str(bad_path)])
    bad_row = pg.locator(".upload-item[data-file='notes.png']")
    bad_row.locator(".upload-state").filter(has_text="Error").wait_for(timeout=30_000)
    assert "image" in bad_row.inner_text().lower()
    pg.locator(".upload-item.done[data-file='shapes.png']").wait_for(timeout=30_000)
    tile = pg.locator(".asset-tile", has_text="shapes.png")
    tile.wait_for(timeout=30_000)
    shot(pg, "uploaded")

    # -- open the annotator ---------------------------------------------------------------------
    tile.click()
    pg.wait_for_function("() => !!window.__tessera", timeout=30_000)
    asset_id = int(re.search(r"/annotate/(\d+)", pg.url).group(1))
    assert pg.title().startswith("Annotate shapes.png")
    tol = 1.5 / _scale(pg) + 0.75  # one CSS pixel of mouse rounding, in image pixels

    # -- keyboard help overlay ------------------------------------------------------------------
    pg.keyboard.press("?")
    help_dialog = pg.get_by_role("dialog", name="Keyboard shortcuts")
    help_dialog.wait_for()
    assert "Undo" in help_dialog.inner_text()
    shot(pg, "help")
    pg.keyboard.press("Escape")
    help_dialog.wait_for(state="detached")

    # -- brush: class 1 --------------------------------------------------------------------------
    pg.keyboard.press("1")
    pg.keyboard.press("b")
    _set_range(pg, "Brush size", 30)
    _drag(pg, (100, 100), (300, 100))
    cmap = _class_map(_client_masks(pg))
    d = _dist_to_segment(100, 100, 300, 100)
    assert (cmap[d <= 15 - tol] == class_ids["disc"]).all()
    assert (cmap[d > 15 + tol] == 0).all()
    shot(pg, "brush")

    # -- eraser cuts the stroke in two -------------------------------------------------------------
    pg.keyboard.press("e")
    _set_range(pg, "Brush size", 20)
    _drag(pg, (200, 60), (200, 140))
    cmap = _class_map(_client_masks(pg))
    de = _dist_to_segment(200, 60, 200, 140)
    assert (cmap[de <= 10 - tol] == 0).all()
    assert (cmap[(d <= 15 - tol) & (de > 10 + tol)] == class_ids["disc"]).all()
    shot(pg, "eraser")

    # -- polygon: class 2 ---------------------------------------------------------------------------
    pg.keyboard.press("2")
    pg.keyboard.press("p")
    for x, y in [(400, 200), (560, 200), (560, 330), (400, 330)]:
        _click(pg, x, y)
    shot(pg, "polygon-open")
    pg.keyboard.press("Enter")
    cmap = _class_map(_client_masks(pg))
    inside = np.zeros((H, W), dtype=bool)
    inside[200:330, 400:560] = True
    core = np.zeros_like(inside)
    core[int(200 + tol) + 1: int(330 - tol) - 1, int(400 + tol) + 1: int(560 - tol) - 1] = True
    grown = np.zeros_like(inside)
    grown[int(200 - tol): int(330 + tol) + 1, int(400 - tol): int(560 + tol) + 1] = True
    assert (cmap[core] == class_ids["square"]).all()
    assert (cmap[~grown & (cmap == class_ids["square"])] == 0).all()
    assert abs(int((cmap == class_ids["square"]).sum()) - int(inside.sum())) < 160 * 4 * tol
    shot(pg, "polygon")

    # -- IntelliBrush: one include click on the disc, one exclude click ------------------------------
    pg.keyboard.press("1")
    pg.keyboard.press("i")
    before_ib = _client_masks(pg)
    with pg.expect_response(lambda r: "/intellibrush/" in r.url, timeout=120_000) as first:
        _click(pg, 150, 330)
    assert first.value.ok, first.value.text()
    with pg.expect_response(lambda r: "/intellibrush/" in r.url, timeout=120_000) as second:
        pg.keyboard.down("Alt")
        _click(pg, 300, 420)
        pg.keyboard.up("Alt")
    assert second.value.ok, second.value.text()
    sent = second.value.request.post_data_json
    assert sent["points"][0][2] == 1 and sent["points"][1][2] == 0
    assert len(sent["points"]) == 2
    proposal = second.value.json()
    pg.wait_for_function("() => !!window.__tessera.proposal()")
    shot(pg, "intellibrush-proposal")
    (_, proposed), = _instances([{"class_id": 0, "rle": proposal["rle"]}])
    assert proposed.sum() > 0
    pg.keyboard.press("Enter")
    after_ib = _client_masks(pg)
    assert len(after_ib) == len(before_ib) + 1
    new_class, new_mask = _instances(after_ib)[-1]
    assert new_class == class_ids["disc"]
    assert np.array_equal(new_mask, proposed)
    shot(pg, "intellibrush-accepted")

    # -- undo / redo -------------------------------------------------------------------------------
    pg.keyboard.press("Control+z")
    assert np.array_equal(_class_map(_client_masks(pg)), _class_map(before_ib))
    pg.keyboard.press("Control+Shift+z")
    assert np.array_equal(_class_map(_client_masks(pg)), _class_map(after_ib))
    shot(pg, "undo-redo")

    # -- save and reload ------------------------------------------------------------------------------
    pg.keyboard.press("Control+s")
    pg.locator("[data-save-state='saved']").wait_for(timeout=30_000)
    drawn = _client_masks(pg)
    pg.reload()
    pg.wait_for_function("() => !!window.__tessera", timeout=30_000)
    shot(pg, "reloaded")
    stored = pg.request.get(f"/api/v1/assets/{asset_id}/masks/").json()
    stored = stored["masks"] if isinstance(stored, dict) else stored
    assert len(stored) == len(drawn)
    for (ca, ma), (cb, mb) in zip(_instances(stored), _instances(drawn), strict=True):
        assert ca == cb
        assert np.array_equal(ma, mb)
    assert np.array_equal(_class_map(_client_masks(pg)), _class_map(drawn))
    assert pg.console_errors == []


def test_keyboard_focus_is_visible_and_unknown_project_errors(page, login, shot):
    pg = page
    login(pg)
    pg.keyboard.press("Tab")
    outline = pg.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")
    shot(pg, "focus")
    pg.goto("/projects/999999")
    pg.get_by_role("alert").wait_for()
    assert pg.get_by_role("alert").inner_text().strip() != ""
