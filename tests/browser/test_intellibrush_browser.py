"""IntelliBrush decoded in the browser (onnxruntime-web: wasm, and WebGPU on SwiftShader) in
headless Chromium.

A second Tessera node runs with ``TESSERA_SAM_MODEL=tiny`` (the real segment-anything
classes, small and seeded random weights), so the whole path is real: the worker computes
the embedding, the page fetches it (binary fp16) and the exported ONNX decoder, and decodes
clicks locally. The masks it proposes are compared with what the server endpoint answers for
the same prompts (same points, same refinement logits), pixel for pixel; the WebGPU decoder's
masks are compared with the wasm decoder's.

The default node (``tessera`` fixture, vit_b without weights) checks the fallback label.
"""
from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_util

from tests.browser.server import (
    CHROMIUM_WEBGPU_ARGS,
    SHAPES_SIZE,
    ApiClient,
    TesseraServer,
    ensure_frontend_built,
    log_in,
    shapes_png,
    start_server,
)

W, H = SHAPES_SIZE
INCLUDE = (150, 330)
EXCLUDE = (300, 420)


def _project_with_image(api: ApiClient, name: str) -> tuple[int, int]:
    """A project with one class and the test image; returns (project id, asset id)."""
    r = api("POST", "/projects/", json={"name": name})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert api("POST", f"/projects/{pid}/classes/", json={"name": "disc", "color": "#ff0000"}).status_code == 201
    r = api("POST", f"/projects/{pid}/assets/", files={"files": ("shapes.png", shapes_png(), "image/png")})
    assert r.status_code == 201, r.text
    assets = api("GET", f"/projects/{pid}/assets/").json()["results"]
    return pid, assets[0]["id"]


def _decode_rle(rle: dict) -> np.ndarray:
    return mask_util.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")}).astype(bool)


def _to_page(pg, x: float, y: float) -> tuple[float, float]:
    return tuple(pg.evaluate("([x, y]) => window.__tessera.imageToPage(x, y)", [x, y]))


def _open_annotator(pg, pid: int, aid: int, query: str = "") -> None:
    pg.goto(f"/projects/{pid}/annotate/{aid}{query}")
    pg.wait_for_function("() => !!window.__tessera", timeout=30_000)
    pg.keyboard.press("i")


def _ib(pg) -> dict:
    return pg.evaluate("() => window.__tessera.intellibrush()")


def _proposal_count_after(pg, n: int) -> None:
    """Wait until the n-th in-browser decode produced a drawn proposal."""
    pg.wait_for_function(
        "(n) => window.__tessera.intellibrush().clickToDrawMs.length >= n && !!window.__tessera.proposal()",
        arg=n, timeout=60_000,
    )


def _include_exclude_accept(pg) -> tuple[dict, dict, np.ndarray]:
    """Include click, then an exclude click refining it, then Enter. Returns the page's
    IntelliBrush stats after each click and the accepted mask."""
    pg.mouse.click(*_to_page(pg, *INCLUDE))
    _proposal_count_after(pg, 1)
    first = _ib(pg)
    pg.keyboard.down("Alt")
    pg.mouse.click(*_to_page(pg, *EXCLUDE))
    pg.keyboard.up("Alt")
    _proposal_count_after(pg, 2)
    second = _ib(pg)
    before = pg.evaluate("() => window.__tessera.masks()")
    pg.keyboard.press("Enter")
    after = pg.evaluate("() => window.__tessera.masks()")
    assert len(after) == len(before) + 1  # the new object holds exactly the proposal's pixels
    return first, second, _decode_rle(after[-1]["rle"])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture(scope="module")
def tiny_node(tmp_path_factory) -> Iterator[TesseraServer]:
    from tests.browser.conftest import CHROMIUM

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    ensure_frontend_built()
    server = start_server(
        tmp_path_factory.mktemp("tessera-tiny-sam"),
        extra_env={"TESSERA_SAM_MODEL": "tiny", "TESSERA_SAM_PRECOMPUTE": "true"},
    )
    yield server
    server.stop()


@pytest.fixture
def tiny_page(browser, tiny_node):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=tiny_node.url)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    # The app's Content-Security-Policy must let onnxruntime-web's wasm and workers run.
    pg.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    pg.page_errors = errors  # type: ignore[attr-defined]
    yield pg
    context.close()


def test_browser_decoding_matches_server(tiny_page, tiny_node, shot):
    """Include + exclude click decoded by onnxruntime-web == the server endpoint, pixel for pixel."""
    pg = tiny_page
    api = ApiClient(tiny_node.url)
    pid, aid = _project_with_image(api, "in-browser SAM")
    posts: list[str] = []
    pg.on("request", lambda r: posts.append(r.url) if r.method == "POST" and "/intellibrush/" in r.url else None)
    embedding_responses = []
    pg.on("response", lambda r: embedding_responses.append(r) if "/embedding/" in r.url else None)

    log_in(pg)
    _open_annotator(pg, pid, aid)
    method = pg.get_by_test_id("ib-method")
    method.filter(has_text="SAM (in browser)").wait_for(timeout=120_000)
    assert pg.evaluate("() => crossOriginIsolated") is True  # COOP/COEP reach the page
    assert len(embedding_responses) == 1
    assert embedding_responses[0].headers["content-type"] == "application/octet-stream"
    shot(pg, "ready")

    # First click: include, no refinement input; second: exclude, refining the first proposal
    # with its low-res logits; then accept with Enter.
    first, stats, browser_mask = _include_exclude_accept(pg)
    shot(pg, "accepted")
    assert first["lastMaskInput"] is None
    assert stats["method"] == "browser" and stats["mode"]["label"] == "SAM (in browser)"
    assert stats["provider"] == "wasm" and "wasm, " in method.inner_text()  # --disable-gpu: no WebGPU
    assert len(stats["decodeMs"]) == 2
    mask_input = stats["lastMaskInput"]
    assert mask_input, "the second click must refine with the first proposal's logits"
    assert posts == [], f"clicks must be decoded in the browser, not POSTed: {posts}"

    # The server, asked the same: first click alone, then both clicks with the same logits.
    points = [[*INCLUDE, 1], [*EXCLUDE, 0]]
    r1 = api("POST", f"/assets/{aid}/intellibrush/", json={"points": points[:1], "return_logits": True})
    assert r1.status_code == 200, r1.text
    assert r1.json()["method"] == "sam" and r1.json()["model_type"] == "tiny"
    # The browser refined with its own first-click logits; they agree with the server's.
    browser_first = np.frombuffer(base64.b64decode(mask_input), "<f2").astype(np.float32)
    server_first = np.frombuffer(base64.b64decode(r1.json()["low_res_logits"]["data"]), "<f2").astype(np.float32)
    assert browser_first.shape == server_first.shape == (64 * 64,)  # tiny: 16x16 grid -> 64x64
    scale = max(1.0, float(np.abs(server_first).max()))
    assert float(np.abs(browser_first - server_first).max()) <= 1e-2 * scale
    r2 = api("POST", f"/assets/{aid}/intellibrush/", json={"points": points, "mask_input": mask_input})
    assert r2.status_code == 200, r2.text
    server_mask = _decode_rle(r2.json()["rle"])
    assert browser_mask.shape == server_mask.shape == (H, W)
    assert server_mask.sum() > 0
    differing = int((browser_mask != server_mask).sum())
    iou = _iou(browser_mask, server_mask)
    print(f"browser vs server: {differing} differing pixels, IoU {iou:.6f}, "
          f"{int(server_mask.sum())} mask pixels, decode ms {stats['decodeMs']}")
    assert differing == 0, f"{differing} pixels differ (IoU {iou:.5f})"
    assert pg.page_errors == []


@pytest.fixture(scope="module")
def webgpu_browser(browser):
    """A second Chromium with WebGPU on SwiftShader (the CPU: correct, not fast)."""
    from tests.browser.conftest import CHROMIUM

    b = browser.browser_type.launch(executable_path=CHROMIUM, args=CHROMIUM_WEBGPU_ARGS)
    yield b
    b.close()


def test_webgpu_decoding_matches_wasm(webgpu_browser, tiny_node, shot):
    """?ib=webgpu decodes on onnxruntime-web's WebGPU provider (SwiftShader here) and proposes the
    same masks as ?ib=wasm for the same clicks: IoU >= 0.99 of the thresholded masks after each
    click (the two providers sum in different orders), first-click low-res logits within 1e-2 of
    their range. Without ?ib= the software adapter is passed over for wasm."""
    api = ApiClient(tiny_node.url)
    pid, aid = _project_with_image(api, "WebGPU SAM")
    runs: dict[str, tuple[dict, np.ndarray, np.ndarray]] = {}  # stats, accepted mask, first logits
    for ib in ("webgpu", "wasm", None):
        context = webgpu_browser.new_context(viewport={"width": 1400, "height": 900}, base_url=tiny_node.url)
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        try:
            log_in(pg)
            adapter = pg.evaluate(
                "async () => { const a = navigator.gpu && await navigator.gpu.requestAdapter();"
                " return a && {arch: a.info.architecture, fallback: a.info.isFallbackAdapter}; }"
            )
            if not adapter:
                pytest.skip("this Chromium offers no WebGPU adapter, even on SwiftShader")
            assert adapter == {"arch": "swiftshader", "fallback": True}
            _open_annotator(pg, pid, aid, f"?ib={ib}" if ib else "")
            label = pg.get_by_test_id("ib-method").filter(has_text="SAM (in browser)")
            label.wait_for(timeout=180_000)
            if ib is None:  # automatic: the software adapter loses to wasm
                assert _ib(pg)["provider"] == "wasm" and "wasm, " in label.inner_text()
                continue
            _, second, mask = _include_exclude_accept(pg)
            shot(pg, f"accepted-{ib}")
            assert second["provider"] == ib and second["method"] == "browser"
            named = "WebGPU (google swiftshader, software)" if ib == "webgpu" else "wasm, "
            assert named in label.inner_text()
            assert len(second["decodeMs"]) == 2
            # The proposal shown after the first click, read back through its refinement input.
            logits = np.frombuffer(base64.b64decode(second["lastMaskInput"]), "<f2").astype(np.float32)
            runs[ib] = (second, mask, logits)
            assert errors == []
        finally:
            context.close()
    gpu, cpu = runs["webgpu"], runs["wasm"]
    logit_err = float(np.abs(gpu[2] - cpu[2]).max())
    scale = max(1.0, float(np.abs(cpu[2]).max()))
    first_iou = _iou(gpu[2] > 0, cpu[2] > 0)
    iou = _iou(gpu[1], cpu[1])
    print(f"webgpu vs wasm: first-click low-res IoU {first_iou:.5f}, max logit diff {logit_err:.2e} "
          f"(range {scale:.1f}); accepted mask IoU {iou:.6f}, {int((gpu[1] != cpu[1]).sum())} differing px, "
          f"{int(cpu[1].sum())} mask px; decode ms webgpu {gpu[0]['decodeMs']} wasm {cpu[0]['decodeMs']}")
    assert cpu[1].sum() > 0
    assert logit_err <= 1e-2 * scale
    assert first_iou >= 0.99 and iou >= 0.99


def test_decoder_failure_falls_back_to_server(tiny_page, tiny_node):
    """When the ONNX decoder cannot load, clicks go to the server endpoint and the UI says so."""
    pg = tiny_page
    api = ApiClient(tiny_node.url)
    pid, aid = _project_with_image(api, "decoder blocked")
    pg.route(re.compile(r".*/intellibrush/decoder\.onnx.*"), lambda route: route.abort())
    log_in(pg)
    _open_annotator(pg, pid, aid)
    label = pg.get_by_test_id("ib-method").filter(has_text="SAM (server)")
    label.wait_for(timeout=120_000)
    assert "decoder could not load" in label.inner_text()
    with pg.expect_response(lambda r: r.url.endswith(f"/assets/{aid}/intellibrush/"), timeout=120_000) as resp:
        pg.mouse.click(*_to_page(pg, *INCLUDE))
    assert resp.value.ok and resp.value.json()["method"] == "sam"
    pg.wait_for_function("() => !!window.__tessera.proposal()")
    assert pg.evaluate("() => window.__tessera.proposal().method") == "sam"


def test_no_weights_says_fallback_and_how_to_install(page, tessera):
    """Default node: vit_b without a checkpoint -> 409 from the embedding, fallback label + hint."""
    pg = page
    api = ApiClient(tessera.url)
    pid, aid = _project_with_image(api, "no SAM weights")
    log_in(pg)
    _open_annotator(pg, pid, aid)
    label = pg.get_by_test_id("ib-method").filter(has_text="fallback: no SAM weights")
    label.wait_for(timeout=60_000)
    text = label.inner_text()
    assert "TESSERA_WEIGHTS_DIR" in text and "sam_vit_b_01ec64.pth" in text
    with pg.expect_response(lambda r: r.url.endswith(f"/assets/{aid}/intellibrush/"), timeout=60_000) as resp:
        pg.mouse.click(*_to_page(pg, *INCLUDE))
    assert resp.value.ok and resp.value.json()["method"] == "fallback"
    pg.wait_for_function("() => !!window.__tessera.proposal()")


def _video_file(path: Path, frames: int = 24, fps: int = 6) -> None:
    """A 4 s synthetic clip (a square moving right), H.264 in MP4."""
    import av

    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for i in range(frames):
            pixels = np.full((64, 96, 3), 30, np.uint8)
            pixels[20:40, 3 * i:3 * i + 16] = (250, 200, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_video_extraction_progress_and_embedding_status(tiny_page, tiny_node, tmp_path, shot):
    """After a video upload the uploader polls the video until its frames are extracted and
    shows the count; the project page shows how many images have SAM embeddings."""
    pg = tiny_page
    api = ApiClient(tiny_node.url)
    pid = api("POST", "/projects/", json={"name": "video progress"}).json()["id"]
    clip = tmp_path / "clip.mp4"
    _video_file(clip)
    polls: list[str] = []
    pg.on("request", lambda r: polls.append(r.url) if re.search(r"/api/v1/videos/\d+/$", r.url) else None)
    log_in(pg)
    pg.goto(f"/projects/{pid}")
    with pg.expect_response(lambda r: r.url.endswith(f"/projects/{pid}/assets/") and r.request.method == "POST") as up:
        pg.get_by_test_id("upload-input").set_input_files(str(clip))
    video_id = up.value.json()["videos"][0]["id"]
    row = pg.locator(".upload-item[data-file='clip.mp4']")
    row.locator(".video-progress[data-video-status='done']").wait_for(timeout=90_000)
    video = api("GET", f"/videos/{video_id}/").json()
    assert video["status"] == "done" and video["frame_count"] > 0
    frames = video["frame_count"]
    assert f"{frames} frame" in row.inner_text() and "extracted" in row.inner_text()
    assert any(u.endswith(f"/videos/{video_id}/") for u in polls)
    # The grid refreshes with the extracted frames.
    pg.locator(".asset-tile").nth(frames - 1).wait_for(timeout=30_000)
    assert pg.locator(".asset-tile").count() == frames
    # Uploads start an embedding job (TESSERA_SAM_PRECOMPUTE); the panel follows it to the end.
    status = pg.get_by_test_id("embedding-status")
    pg.wait_for_function(
        "(n) => { const e = document.querySelector('[data-testid=embedding-status]');"
        " return e && e.dataset.total === String(n) && e.dataset.ready === String(n); }",
        arg=frames, timeout=120_000,
    )
    assert f"{frames} / {frames} images ready" in status.inner_text()
    assert "SAM tiny" in status.inner_text()
    server = api("GET", f"/projects/{pid}/intellibrush/embeddings/").json()
    assert server["ready"] == server["total"] == frames
    shot(pg, "video-and-embeddings")
