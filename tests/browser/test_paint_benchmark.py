"""Paint benchmark in Chromium: a 4000x3000 image with 500 objects, brush strokes across it.

Measures, in the page: the time to redraw each dirty region (renderer flush), the interval
between animation frames while painting, a full redraw (hide/show all masks), the time to
encode all masks for a save, and the time from navigation to an editable annotator. Writes
the figures to benchmarks/results/annotator_paint.json and checks that painting stays
within a frame budget."""
from __future__ import annotations

import io
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_util

W, H = 4000, 3000
COLS, ROWS = 25, 20  # 500 objects
STEPS = 80  # pointer moves per stroke
RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "annotator_paint.json"


def _jpeg() -> bytes:
    """A smooth colour gradient with a few stripes (cheap to make, realistic to decode)."""
    x = np.linspace(0, 255, W, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, H, dtype=np.float32)[:, None]
    rgb = np.empty((H, W, 3), dtype=np.uint8)
    rgb[..., 0] = x
    rgb[..., 1] = y
    rgb[..., 2] = ((x + y) / 2) * ((np.arange(W)[None, :] // 50) % 2 * 0.3 + 0.7)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _rle_from_pixels(cols: np.ndarray, rows: np.ndarray) -> dict:
    """COCO RLE (compressed by pycocotools) of the set pixels given by their coordinates."""
    idx = np.unique(cols.astype(np.int64) * H + rows)  # column-major positions
    breaks = np.flatnonzero(np.diff(idx) != 1)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks] + 1, [idx[-1] + 1]])
    counts: list[int] = []
    pos = 0
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        counts += [a - pos, b - a]
        pos = b
    counts.append(H * W - pos)
    rle = mask_util.frPyObjects({"size": [H, W], "counts": counts}, H, W)
    return {"size": [H, W], "counts": rle["counts"].decode("ascii")}


def _objects(class_ids: list[int]) -> list[dict]:
    """500 disjoint ellipses on a grid, as API masks."""
    cw, ch = W // COLS, H // ROWS
    yy, xx = np.mgrid[0:ch, 0:cw]
    ell = ((xx - cw / 2) / (cw * 0.42)) ** 2 + ((yy - ch / 2) / (ch * 0.42)) ** 2 <= 1
    ys, xs = np.nonzero(ell)
    out = []
    for r in range(ROWS):
        for c in range(COLS):
            out.append({"class_id": class_ids[(r + c) % len(class_ids)],
                        "rle": _rle_from_pixels(xs + c * cw, ys + r * ch)})
    return out


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def test_paint_on_a_4000x3000_image_with_500_objects(page, tessera):
    from tests.browser.server import PASSWORD, USERNAME

    pg = page
    req = pg.request
    token = req.post("/api/v1/auth/token/", data={"username": USERNAME, "password": PASSWORD}).json()["token"]
    auth = {"Authorization": f"Token {token}"}
    project = req.post("/api/v1/projects/", data={"name": "Paint benchmark"}, headers=auth).json()
    class_ids = [
        req.post(f"/api/v1/projects/{project['id']}/classes/", data={"name": n}, headers=auth).json()["id"]
        for n in ("road", "car", "tree")
    ]
    up = req.post(f"/api/v1/projects/{project['id']}/assets/", headers=auth,
                  multipart={"files": {"name": "big.jpg", "mimeType": "image/jpeg", "buffer": _jpeg()}})
    assert up.status == 201, up.text()
    asset = up.json()["created"][0]
    assert (asset["width"], asset["height"]) == (W, H)
    put = req.put(f"/api/v1/assets/{asset['id']}/masks/", headers=auth, data={"masks": _objects(class_ids)})
    assert put.ok, put.text()

    # Log the browser in (session) and open the annotator.
    pg.goto("/login")
    pg.get_by_label("Username").fill(USERNAME)
    pg.get_by_label("Password").fill(PASSWORD)
    pg.get_by_role("button", name="Log in").click()
    pg.get_by_role("heading", name="Projects").wait_for()
    t0 = time.perf_counter()
    pg.goto(f"/projects/{project['id']}/annotate/{asset['id']}")
    pg.wait_for_function("() => !!window.__tessera", timeout=60_000)
    open_s = time.perf_counter() - t0
    n_objects = pg.locator(".object-list li").count()
    assert n_objects == 500

    # Zoom to 100% around the centre so a stroke paints many screen pixels.
    pg.keyboard.press("b")
    pg.get_by_label("Brush size", exact=True).fill("60")
    pg.keyboard.press("1")
    flushes_before = len(pg.evaluate("() => window.__tessera.benchmarkFlushMs()"))

    pg.evaluate("""() => {
        window.__frames = [];
        window.__recording = true;
        const tick = (t) => { if (!window.__recording) return; window.__frames.push(t); requestAnimationFrame(tick); };
        requestAnimationFrame(tick);
    }""")
    to_page = lambda x, y: pg.evaluate("([x, y]) => window.__tessera.imageToPage(x, y)", [x, y])  # noqa: E731

    # Baseline: the same pointer moves without painting (button up), to separate the cost of
    # driving the browser from the cost of painting.
    pg.mouse.move(*to_page(200, 400))
    t_idle = time.perf_counter()
    pg.mouse.move(*to_page(3800, 700), steps=STEPS)
    idle_move_ms = (time.perf_counter() - t_idle) * 1000 / STEPS
    idle_handler = pg.evaluate("() => window.__tessera.pointerMoveMs()")

    strokes = 0
    t_paint = time.perf_counter()
    for y in (400, 1300, 2200):
        pg.mouse.move(*to_page(200, y))
        pg.mouse.down()
        pg.mouse.move(*to_page(3800, y + 300), steps=STEPS)
        pg.mouse.up()
        strokes += 1
    paint_s = time.perf_counter() - t_paint
    handler = pg.evaluate("() => window.__tessera.pointerMoveMs()")
    handler_ms = (handler[0] - idle_handler[0]) / max(1, handler[1] - idle_handler[1])
    frames = pg.evaluate("() => { window.__recording = false; return window.__frames; }")
    flush = pg.evaluate("() => window.__tessera.benchmarkFlushMs()")[flushes_before:]
    intervals = [b - a for a, b in zip(frames, frames[1:], strict=False)]

    # Full redraw: hide then show every mask.
    pg.keyboard.press("h")
    pg.keyboard.press("h")
    pg.wait_for_timeout(300)
    full = pg.evaluate("() => window.__tessera.benchmarkFlushMs()")[-1]
    encode_ms = pg.evaluate("""() => { const t = performance.now(); const m = window.__tessera.masks();
        return [performance.now() - t, m.length]; }""")
    version = pg.evaluate("() => navigator.userAgent")

    result = {
        "benchmark": "annotator_paint",
        "image": [W, H],
        "objects": n_objects,
        "browser": version,
        "flags": "headless, --disable-gpu (software raster)",
        "machine": {"cpu_count": __import__("os").cpu_count(), "platform": platform.platform()},
        "open_annotator_s": round(open_s, 2),
        "strokes": strokes,
        "pointer_moves": strokes * STEPS,
        "paint_wall_s": round(paint_s, 2),
        "driver_ms_per_move_painting": round(paint_s * 1000 / (strokes * STEPS), 2),
        "driver_ms_per_move_idle": round(idle_move_ms, 2),
        "pointermove_handler_ms_mean": round(handler_ms, 3),
        "dirty_flush_ms": {"count": len(flush), "p50": round(statistics.median(flush), 3),
                           "p95": round(_pct(flush, 0.95), 3), "max": round(max(flush), 3)},
        "frame_interval_ms": {"count": len(intervals), "p50": round(statistics.median(intervals), 2),
                              "p95": round(_pct(intervals, 0.95), 2), "max": round(max(intervals), 2)},
        "full_redraw_ms": round(full, 1),
        "encode_all_masks_ms": round(encode_ms[0], 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))

    assert encode_ms[1] == 501  # the 500 loaded objects plus the one the strokes painted
    assert len(flush) >= strokes * 10  # redraws happened during the strokes, not once at the end
    # Dirty-region redraws fit comfortably in a 60 Hz frame on this 2-core software-raster box.
    assert result["dirty_flush_ms"]["p95"] < 16
