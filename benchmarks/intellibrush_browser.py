"""IntelliBrush decoded in the browser: onnxruntime-web (wasm; WebGPU on SwiftShader) in headless Chromium.

For each SAM model type (``tiny``: the test model, embedding (1, 64, 16, 16); ``vit_b``: the
official decoder, embedding (1, 256, 64, 64), shared by vit_b/l/h) a real Tessera node is
started, an image uploaded, and the annotator page driven with real mouse clicks:
include click, exclude click (refining the first), Escape; repeated. Measured on the page:
  * decode_ms: decoder only (session.run + thresholding the full-size logits), per click;
  * click_to_draw_ms: pointerup -> proposal drawn on its canvas, measured at the next frame;
  * the one-time costs: embedding fetch (binary fp16) and decoder load (wasm + graph).
Baselines in the same run: the server endpoint (POST /assets/{id}/intellibrush/, PyTorch
decode + RLE) timed from Python, and the same ONNX graph in native onnxruntime (1 thread;
its decode includes thresholding, as the browser's decode_ms does).

Threads: static files carry the cross-origin isolation headers (the isolation middleware
sits in front of WhiteNoise), so onnxruntime-web may use worker threads; ``threads_1`` and
``threads_2`` compare one and two (both pinned to in-browser wasm decoding with ``?ib=wasm``);
``automatic`` is the page as users get it: after 3 slow in-browser decodes it times one
server click and hands clicks to the server when that was at least twice as fast.

int8 (``--int8``): the decoder quantized like segment-anything's ``scripts/export_onnx_model.py
--quantize-out`` (``quantize_dynamic``, uint8 weights), served to the page in place of the fp32
graph, 2 threads wasm, same clicks: ``int8_wasm`` gives its decode times beside ``threads_2``
(fp32) and, in ``fp32_same_clicks_interleaved``, an fp32 page given the same clicks in turn with
the int8 page, and the IoU of every int8 proposal with the fp32 one for the same click.

WebGPU: a second Chromium with WebGPU on SwiftShader (Chromium's Vulkan on the CPU; this machine
has no GPU) runs the same clicks with ``?ib=webgpu`` (``webgpu_swiftshader``, fewer cycles). It
shows that the WebGPU path runs, not what a GPU does: SwiftShader is far slower than wasm.

vit_b runs with random weights (a generated checkpoint; timings do not depend on values),
and its embedding is written straight into storage with random values instead of spending
minutes in the ViT-B encoder on this CPU: the decoder's cost does not depend on them.

Usage:  .venv/bin/python benchmarks/intellibrush_browser.py [--cycles 15] [--webgpu-cycles 2]
            [--int8] [--models tiny,vit_b]
Writes benchmarks/results/intellibrush_browser.json and prints the same figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.server import (  # noqa: E402
    CHROMIUM_WEBGPU_ARGS,
    SHAPES_SIZE,
    ApiClient,
    ensure_frontend_built,
    log_in,
    shapes_png,
    start_server,
)

W, H = SHAPES_SIZE
CHROMIUM = os.environ.get("TESSERA_CHROMIUM", "/usr/bin/chromium")


def _stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    arr = np.asarray(values)
    return {
        "n": len(values),
        "p50": round(float(np.percentile(arr, 50)), 2),
        "p95": round(float(np.percentile(arr, 95)), 2),
        "mean": round(float(arr.mean()), 2),
        "max": round(float(arr.max()), 2),
    }


def _random_vit_b_checkpoint(folder: Path) -> Path:
    """A state dict of the official vit_b architecture with seeded random weights."""
    import torch

    from annotator.intellibrush.sam import OFFICIAL_CHECKPOINTS, build_sam

    path = folder / OFFICIAL_CHECKPOINTS["vit_b"]
    torch.save(build_sam("vit_b").state_dict(), path)
    return path


def _store_random_embedding(media: Path, asset: dict, model_type: str) -> None:
    """Write a vit_b-shaped embedding where the server looks for it (services.embedding_key)."""
    from annotator.intellibrush.sam import EmbeddingRecord

    scale = 1024 / max(W, H)
    record = EmbeddingRecord(
        embedding=np.random.default_rng(0).standard_normal((1, 256, 64, 64)).astype(np.float16) * 0.1,
        input_size=(int(H * scale + 0.5), int(W * scale + 0.5)),
        original_size=(H, W),
        image_size=1024,
        model_type=model_type,
    )
    target = media / "embeddings" / str(asset["id"]) / f"{asset['sha256']}-{model_type}.npz"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(record.to_npz_bytes())


# The proposal on the page as run lengths over its box bitmap (first run: zeros).
PROPOSAL_RUNS_JS = """() => {
  const b = window.__tessera.proposal()?.bitmap;
  if (!b) return null;
  const runs = [];
  let value = 0, n = 0;
  for (const d of b.data) { if (d !== value) { runs.push(n); n = 0; value = d; } n++; }
  runs.push(n);
  return { box: b.box, runs };
}"""


def _proposal_mask(p: dict | None) -> np.ndarray:
    """A full-size bool mask from PROPOSAL_RUNS_JS's answer."""
    mask = np.zeros((H, W), bool)
    if p:
        box = p["box"]
        flat = np.repeat(np.arange(len(p["runs"])) % 2 == 1, p["runs"])
        mask[box["y0"]:box["y1"], box["x0"]:box["x1"]] = flat.reshape(box["y1"] - box["y0"], box["x1"] - box["x0"])
    return mask


def _open_annotator(browser, url: str, pid: int, aid: int, threads: int | None = None,
                    ib: str | None = "wasm", decoder: bytes | None = None):
    """A page on the annotator with IntelliBrush ready in the browser; returns (context, page).

    ib: ``?ib=wasm`` / ``?ib=webgpu`` keep every click in the browser on that provider (to time
    the decoder); None: the page as users get it, which may hand clicks to the server.
    decoder: ONNX bytes served to the page instead of the server's decoder graph."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=url)
    pg = context.new_page()
    if decoder:
        pg.route(re.compile(r".*/intellibrush/decoder\.onnx.*"),
                 lambda route: route.fulfill(body=decoder, content_type="application/octet-stream"))
    if threads:
        pg.add_init_script(f"window.__TESSERA_ORT_THREADS = {threads}")
    pg.posts = []  # type: ignore[attr-defined]
    pg.on("request", lambda r: pg.posts.append(r.url) if r.method == "POST" and "/intellibrush/" in r.url else None)
    log_in(pg)
    pg.goto(f"/projects/{pid}/annotate/{aid}" + (f"?ib={ib}" if ib else ""))
    pg.wait_for_function("() => !!window.__tessera", timeout=60_000)
    t0 = time.perf_counter()
    pg.keyboard.press("i")
    pg.get_by_test_id("ib-method").filter(has_text="SAM (in browser)").wait_for(timeout=300_000)
    pg.ready_s = time.perf_counter() - t0  # type: ignore[attr-defined]
    return context, pg


def _page_runs(browser, url: str, pid: int, aid: int, cycles: int, *variants: dict) -> list[dict]:
    """One annotator page per variant (``_open_annotator`` keywords), all open at once; click
    ``cycles`` x (include, exclude, Escape), each click on every page in turn (so load on this
    shared machine hits the variants alike). Returns each page's stats, with ``proposals``:
    every click's proposal (PROPOSAL_RUNS_JS)."""
    opened = []
    try:
        for v in variants:
            opened.append(_open_annotator(browser, url, pid, aid, **v))
        pages = [pg for _, pg in opened]
        proposals: list[list] = [[] for _ in pages]
        rng = np.random.default_rng(1)
        done = 0
        for _ in range(cycles):
            for exclude in (False, True):
                x, y = rng.uniform(0.15, 0.85) * W, rng.uniform(0.15, 0.85) * H
                done += 1
                for pg, found in zip(pages, proposals, strict=True):
                    px, py = pg.evaluate("([x, y]) => window.__tessera.imageToPage(x, y)", [x, y])
                    if exclude:
                        pg.keyboard.down("Alt")
                    pg.mouse.click(px, py)
                    if exclude:
                        pg.keyboard.up("Alt")
                    pg.wait_for_function(
                        "(n) => window.__tessera.intellibrush().clickToDrawMs.length >= n", arg=done, timeout=600_000
                    )
                    found.append(pg.evaluate(PROPOSAL_RUNS_JS))
            for pg in pages:
                pg.keyboard.press("Escape")
        results = []
        for pg, found in zip(pages, proposals, strict=True):
            stats = pg.evaluate("() => window.__tessera.intellibrush()")
            stats.update(ready_s=pg.ready_s, proposals=found, posts=len(pg.posts),
                         crossOriginIsolated=pg.evaluate("() => crossOriginIsolated"))
            results.append(stats)
        return results
    finally:
        for context, _ in opened:
            context.close()


def _page_run(browser, url: str, pid: int, aid: int, threads: int | None, cycles: int,
              ib: str | None = "wasm") -> dict:
    """``_page_runs`` with one page."""
    return _page_runs(browser, url, pid, aid, cycles, {"threads": threads, "ib": ib})[0]


def _server_baseline(api: ApiClient, aid: int, cycles: int) -> dict:
    rng = np.random.default_rng(1)
    times: list[float] = []
    for _ in range(cycles):
        points: list[list[float]] = []
        for label in (1, 0):
            points.append([int(rng.uniform(0.15, 0.85) * W), int(rng.uniform(0.15, 0.85) * H), label])
            t0 = time.perf_counter()
            api("POST", f"/assets/{aid}/intellibrush/", json={"points": points})
            times.append(1000 * (time.perf_counter() - t0))
    return _stats(times[1:])


def _int8_decoder(onnx_bytes: bytes, work: Path) -> bytes:
    """The decoder with dynamic int8 weights, as segment-anything's --quantize-out makes it."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = work / "decoder-fp32.onnx", work / "decoder-int8.onnx"
    src.write_bytes(onnx_bytes)
    quantize_dynamic(src, dst, per_channel=False, reduce_range=False, weight_type=QuantType.QUInt8)
    return dst.read_bytes()


def _mask_agreement(a: list, b: list) -> dict:
    """IoU of each click's proposal in two runs of the same clicks."""
    ious = []
    for pa, pb in zip(a, b, strict=True):
        ma, mb = _proposal_mask(pa), _proposal_mask(pb)
        ious.append(float((ma & mb).sum() / max((ma | mb).sum(), 1)))
    return {"clicks": len(ious), "iou_min": round(min(ious), 5), "iou_mean": round(float(np.mean(ious)), 5),
            "clicks_iou_below_0_95": sum(i < 0.95 for i in ious)}


def _native_ort_baseline(onnx_bytes: bytes, emb: requests.Response, cycles: int, work: Path) -> dict:
    """The same graph and embedding in native onnxruntime (CPU, 1 thread), same prompt pattern."""
    from annotator.intellibrush.onnx_export import OnnxDecoder
    from annotator.intellibrush.sam import EmbeddingRecord

    path = work / "decoder.onnx"
    path.write_bytes(onnx_bytes)
    shape = tuple(int(v) for v in emb.headers["X-Sam-Embedding-Shape"].split(","))
    record = EmbeddingRecord(
        embedding=np.frombuffer(emb.content, "<f2").reshape(shape),
        input_size=tuple(int(v) for v in emb.headers["X-Sam-Input-Size"].split(",")),
        original_size=tuple(int(v) for v in emb.headers["X-Sam-Original-Size"].split(",")),
        image_size=int(emb.headers["X-Sam-Image-Size"]),
        model_type=emb.headers["X-Sam-Model-Type"],
    )
    decoder = OnnxDecoder(path, threads=1)
    rng = np.random.default_rng(1)
    times: list[float] = []
    for _ in range(cycles):
        points = np.array([[rng.uniform(0.15, 0.85) * W, rng.uniform(0.15, 0.85) * H]])
        first = decoder.decode(record, points, np.array([1]))
        t0 = time.perf_counter()
        decoder.decode(record, points, np.array([1]))
        times.append(1000 * (time.perf_counter() - t0))
        points = np.vstack([points, [[rng.uniform(0.15, 0.85) * W, rng.uniform(0.15, 0.85) * H]]])
        t0 = time.perf_counter()
        decoder.decode(record, points, np.array([1, 0]), mask_input=first.low_res_logits)
        times.append(1000 * (time.perf_counter() - t0))
    return _stats(times)


def _webgpu_adapter(browser, url: str) -> dict | None:
    """The WebGPU adapter this Chromium offers a page of ``url`` (a secure context), or None."""
    context = browser.new_context(base_url=url)
    try:
        pg = context.new_page()
        pg.goto("/")
        return pg.evaluate(
            "async () => { const a = navigator.gpu && await navigator.gpu.requestAdapter();"
            " return a && {vendor: a.info.vendor, architecture: a.info.architecture,"
            " is_fallback_adapter: a.info.isFallbackAdapter}; }"
        )
    finally:
        context.close()


def _decoder_figures(s: dict) -> dict:
    """One pinned run's figures (the first click, which warms the decoder, apart)."""
    decode = s["decodeMs"]
    return {
        "provider": s["provider"],
        "threads_used": s["threads"],
        "cross_origin_isolated": s["crossOriginIsolated"],
        "first_decode_ms": round(decode[0], 1) if decode else None,
        "decode_ms": _stats(decode[1:]),
        "decode_session_run_ms": _stats(s["decodeRunMs"][1:]),
        "click_to_draw_ms": _stats(s["clickToDrawMs"][1:]),
        "embedding_fetch_ms": round(s["embeddingMs"] or 0, 1),
        "decoder_load_ms": round(s["decoderLoadMs"] or 0, 1),
        "tool_ready_s": round(s["ready_s"], 2),
        "clicks": len(decode),
        "server_posts_during_run": s["posts"],
    }


def bench_model(browser, webgpu_browser, model_type: str, cycles: int, webgpu_cycles: int, int8: bool,
                work: Path) -> dict:
    var_dir = work / f"node-{model_type}"
    weights = work / "weights"
    weights.mkdir(exist_ok=True)
    env = {
        "TESSERA_SAM_MODEL": model_type,
        "TESSERA_SAM_PRECOMPUTE": "false",
        "TESSERA_WEIGHTS_DIR": str(weights),
    }
    if model_type == "vit_b":
        t0 = time.perf_counter()
        _random_vit_b_checkpoint(weights)
        print(f"  random vit_b checkpoint written in {time.perf_counter() - t0:.1f}s", flush=True)
    server = start_server(var_dir, extra_env=env)
    try:
        api = ApiClient(server.url, strict=True, timeout=600)
        pid = api("POST", "/projects/", json={"name": f"bench {model_type}"}).json()["id"]
        api("POST", f"/projects/{pid}/classes/", json={"name": "thing", "color": "#ff0000"})
        api("POST", f"/projects/{pid}/assets/", files={"files": ("shapes.png", shapes_png(), "image/png")})
        asset = api("GET", f"/projects/{pid}/assets/").json()["results"][0]
        aid = asset["id"]
        if model_type != "tiny":
            _store_random_embedding(var_dir / "media", asset, model_type)
        emb = api("GET", f"/assets/{aid}/embedding/", params={"encoding": "binary"})
        onnx = api("GET", "/intellibrush/decoder.onnx", params={"model_type": model_type})  # export once
        result: dict = {
            "embedding_shape": emb.headers["X-Sam-Embedding-Shape"],
            "embedding_bytes": len(emb.content),
            "decoder_onnx_bytes": len(onnx.content),
        }
        for threads in (1, 2):
            print(f"  {model_type}: {threads} thread(s)…", flush=True)
            s = _page_run(browser, server.url, pid, aid, threads, cycles)
            result[f"threads_{threads}"] = _decoder_figures(s)
        if int8:
            print(f"  {model_type}: int8 and fp32 decoders, 2 threads, clicks alternating…", flush=True)
            int8_onnx = _int8_decoder(onnx.content, var_dir)
            s32, s8 = _page_runs(browser, server.url, pid, aid, cycles, {"threads": 2},
                                 {"threads": 2, "decoder": int8_onnx})
            result["int8_wasm"] = {
                "decoder_onnx_bytes": len(int8_onnx),
                **_decoder_figures(s8),
                "fp32_same_clicks_interleaved": _decoder_figures(s32),
                "iou_with_fp32_proposals": _mask_agreement(s8["proposals"], s32["proposals"]),
                "native_onnxruntime_1_thread_decode_ms": _native_ort_baseline(int8_onnx, emb, cycles, var_dir),
            }
        adapter = _webgpu_adapter(webgpu_browser, server.url) if webgpu_cycles else None
        if adapter:
            print(f"  {model_type}: WebGPU on {adapter}…", flush=True)
            s = _page_run(webgpu_browser, server.url, pid, aid, None, webgpu_cycles, ib="webgpu")
            result["webgpu_swiftshader"] = {
                "note": "WebGPU on SwiftShader: Chromium's Vulkan implementation on the CPU (this machine "
                        "has no GPU). Proves the WebGPU path; its speed says nothing about a GPU's.",
                "adapter": adapter,
                "adapter_shown": s["adapter"],
                **_decoder_figures(s),
            }
        else:
            result["webgpu_swiftshader"] = {"note": "no WebGPU adapter in this Chromium (or --webgpu-cycles 0)"}
        print(f"  {model_type}: 2 threads, automatic browser/server choice…", flush=True)
        s = _page_run(browser, server.url, pid, aid, 2, cycles, ib=None)
        result["automatic"] = {
            "method_at_end": s["method"],
            "in_browser_decodes": len(s["decodeMs"]),
            "server_check_ms": s["serverCheckMs"] and round(s["serverCheckMs"], 1),
            "click_to_draw_ms": _stats(s["clickToDrawMs"][1:]),
            "click_to_draw_ms_last_half": _stats(s["clickToDrawMs"][len(s["clickToDrawMs"]) // 2:]),
            "server_posts_during_run": s["posts"],
        }
        result["server_endpoint_click_ms"] = _server_baseline(api, aid, max(3, cycles // 3))
        result["native_onnxruntime_1_thread_decode_ms"] = _native_ort_baseline(onnx.content, emb, cycles, var_dir)
        return result
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=15, help="include+exclude click pairs per run")
    parser.add_argument("--webgpu-cycles", type=int, default=2,
                        help="click pairs on WebGPU/SwiftShader (slow: the CPU); 0 skips it")
    parser.add_argument("--int8", action="store_true", help="also time a dynamic-int8 decoder (wasm)")
    parser.add_argument("--models", default="tiny,vit_b")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    load_at_start = os.getloadavg()[0]  # the machine is shared: load skews every figure
    ensure_frontend_built()
    chromium_version = os.popen(f"{CHROMIUM} --version 2>/dev/null").read().strip()
    out: dict = {
        "benchmark": "intellibrush_browser",
        "runtime": "onnxruntime-web in headless Chromium: wasm (SIMD) with --disable-gpu; "
                   "webgpu_swiftshader: the WebGPU provider on SwiftShader (" + " ".join(CHROMIUM_WEBGPU_ARGS) + ")",
        "chromium": chromium_version,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "image_size": [H, W],
        "cycles": args.cycles,
        "prompts": "per cycle: include click, then exclude click refining it (mask_input), then Escape",
        "models": {},
    }
    with tempfile.TemporaryDirectory(prefix="ib-browser-bench-") as tmp, sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        webgpu_browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_WEBGPU_ARGS)
        try:
            for model_type in args.models.split(","):
                print(f"{model_type}:", flush=True)
                out["models"][model_type] = bench_model(
                    browser, webgpu_browser, model_type, args.cycles, args.webgpu_cycles, args.int8, Path(tmp)
                )
                print(json.dumps(out["models"][model_type], indent=1), flush=True)
        finally:
            webgpu_browser.close()
            browser.close()
    out["load_average_1m_at_start_and_end"] = [round(load_at_start, 2), round(os.getloadavg()[0], 2)]
    target = ROOT / "benchmarks" / "results" / "intellibrush_browser.json"
    target.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
