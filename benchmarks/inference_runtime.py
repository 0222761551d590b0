"""Inference runtimes on this CPU: eager PyTorch vs bare ONNX Runtime, fp32 vs int8.

Two parts, both in one run:

  * speed: SegFormer-B0 (random weights, built from its config) at 512x512, batch 1 (and
    batch 4 with --batch4): an eager PyTorch forward loop vs a bare ``InferenceSession.run``
    loop on the fp32 ONNX export, the dynamic int8 export (all ops, and MatMul-only),
    the static QDQ int8 export (calibrated on synthetic images) and fp16. Forward only:
    the same preprocessed tensor each call, so only the runtimes differ. The variants
    are timed round-robin (one call of each in turn) so load from other processes on the
    machine hits them alike.
  * quality: a tiny SegFormer trained for a few seconds on the synthetic shapes, every
    export measured on a synthetic validation set (``export_report``: mIoU delta vs eager).

Usage:  python benchmarks/inference_runtime.py [--iterations 10] [--threads 2] [--batch4]
Writes benchmarks/results/inference_runtime.json and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deployments.runtime import export  # noqa: E402
from deployments.runtime import report as runtime_report  # noqa: E402
from deployments.runtime.artifact import ArtifactMeta, SemanticLogitsModel  # noqa: E402
from deployments.runtime.ort import ort_session  # noqa: E402
from deployments.runtime.processing import preprocess  # noqa: E402
from projects.synthetic import SYNTHETIC_CLASSES, make_dataset  # noqa: E402
from training.modeling.registry import (  # noqa: E402
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_model,
    count_parameters,
    get_spec,
)


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _meta(variant: str, resolution: tuple[int, int]) -> ArtifactMeta:
    classes = [{"index": 0, "name": "background", "color": "#000000"}]
    classes += [
        {"index": i + 1, "name": n, "color": c} for i, (n, c) in enumerate(SYNTHETIC_CLASSES)
    ]
    return ArtifactMeta.from_dict(
        {
            "format": 1,
            "family": "segformer",
            "variant": variant,
            "classes": classes,
            "resolution": list(resolution),
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
        }
    )


def _round_robin(runners: dict[str, callable], iterations: int, warmup: int = 2) -> dict[str, dict]:
    for run in runners.values():
        for _ in range(warmup):
            run()
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(iterations):
        for name, run in runners.items():
            start = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - start)
    return {
        name: {
            "ms_p50": statistics.median(s) * 1000,
            "ms_min": min(s) * 1000,
            "ms_max": max(s) * 1000,
        }
        for name, s in samples.items()
    }


def speed_part(iterations: int, threads: int, work: Path, batch_sizes: tuple[int, ...]) -> dict:
    meta = _meta("b0", (512, 512))
    torch.manual_seed(0)
    model = build_model(
        get_spec("segformer", "b0"), num_labels=meta.num_labels, pretrained="none"
    ).eval()
    wrapper = SemanticLogitsModel(model).eval()
    calibration = [s.image for s in make_dataset(8, seed=7, sizes=((512, 512),))]

    _log("exporting B0 to ONNX and quantizing")
    files = {"onnx-fp32": work / "b0.onnx"}
    start = time.perf_counter()
    export.export_onnx(model, meta, files["onnx-fp32"])
    export_s = time.perf_counter() - start
    files["onnx-int8-dynamic"] = export.quantize_onnx_dynamic(
        files["onnx-fp32"], work / "b0.int8-dyn.onnx"
    )
    files["onnx-int8-dynamic-matmul"] = export.quantize_onnx_dynamic(
        files["onnx-fp32"], work / "b0.int8-dyn-matmul.onnx", op_types=["MatMul", "Gemm"]
    )
    files["onnx-int8-static"] = export.quantize_onnx_static(
        files["onnx-fp32"], work / "b0.int8-static.onnx", meta, calibration
    )
    files["onnx-fp16"] = export.convert_onnx_fp16(files["onnx-fp32"], work / "b0.fp16.onnx")

    results: dict[str, dict] = {}
    for batch_size in batch_sizes:
        _log(f"timing batch {batch_size}")
        batch = preprocess(calibration[:1] * batch_size, meta.resolution, meta.mean, meta.std)
        tensor = torch.from_numpy(batch)

        def eager(t: torch.Tensor = tensor) -> None:
            with torch.inference_mode():
                wrapper(t)

        runners = {"pytorch-eager": eager}
        sessions = {name: ort_session(path, threads=threads) for name, path in files.items()}
        for name, session in sessions.items():
            runners[name] = lambda s=session, b=batch: s.run(None, {"pixel_values": b})
        timings = _round_robin(runners, iterations if batch_size == 1 else max(3, iterations // 4))
        _log(
            f"batch {batch_size}: "
            + ", ".join(f"{k} {v['ms_p50']:.0f} ms" for k, v in timings.items())
        )
        base = timings["pytorch-eager"]["ms_p50"]
        onnx_base = timings["onnx-fp32"]["ms_p50"]
        for t in timings.values():
            t["images_per_s"] = batch_size * 1000 / t["ms_p50"]
            t["speedup_vs_eager"] = base / t["ms_p50"]
            t["speedup_vs_onnx_fp32"] = onnx_base / t["ms_p50"]
        results[f"batch_{batch_size}"] = timings
    return {
        "model": "segformer-b0 (random weights)",
        "params": count_parameters(model),
        "resolution": [512, 512],
        "onnx_export_s": export_s,
        "sizes_bytes": {name: path.stat().st_size for name, path in files.items()},
        "timings": results,
    }


def _train_tiny(steps: int) -> torch.nn.Module:
    meta = _meta("tiny", (64, 64))
    torch.manual_seed(0)
    model = build_model(
        get_spec("segformer", "tiny"), num_labels=meta.num_labels, pretrained="none"
    )
    data = make_dataset(256, seed=1, sizes=((64, 64),))
    images = torch.from_numpy(
        preprocess([s.image for s in data], meta.resolution, meta.mean, meta.std)
    )
    labels = torch.from_numpy(np.stack([s.semantic for s in data])).long()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(data), (16,), generator=generator)
        loss = model(pixel_values=images[idx], labels=labels[idx]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def quality_part(steps: int, threads: int, work: Path) -> dict:
    _log(f"training the tiny SegFormer for {steps} steps")
    meta = _meta("tiny", (64, 64))
    start = time.perf_counter()
    model = _train_tiny(steps)
    train_s = time.perf_counter() - start
    val = make_dataset(64, seed=99, sizes=((64, 64), (96, 80), (128, 96)))
    _log("export report on the tiny model")
    calibration = [s.image for s in make_dataset(32, seed=5, sizes=((64, 64), (96, 80)))]
    report = runtime_report.export_report(
        model,
        meta,
        work / "tiny",
        val_images=[s.image for s in val],
        val_targets=[s.semantic for s in val],
        calibration_images=calibration,
        formats=(
            "onnx",
            "onnx-int8-dynamic",
            "onnx-int8-dynamic-matmul",
            "onnx-int8-static",
            "onnx-fp16",
            "torchscript",
            "pruned",
        ),
        prune_ratio=0.3,
        threads=threads,
    )
    for entry in report["formats"].values():
        entry.pop("path", None)
    report["train_steps"] = steps
    report["train_s"] = train_s
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--batch4", action="store_true", help="also time batch 4")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument(
        "--out", default=str(ROOT / "benchmarks" / "results" / "inference_runtime.json")
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="tessera-bench-infer-") as tmp:
        work = Path(tmp)
        speed = speed_part(args.iterations, args.threads, work, (1, 4) if args.batch4 else (1,))
        quality = quality_part(args.train_steps, args.threads, work)

    b1 = speed["timings"]["batch_1"]
    fp32 = b1["onnx-fp32"]["ms_p50"]
    int8_verdict = {}
    for name in ("onnx-int8-dynamic", "onnx-int8-dynamic-matmul", "onnx-int8-static"):
        faster = b1[name]["ms_p50"] < fp32 / runtime_report.MIN_SPEEDUP
        delta = quality["formats"][name].get("miou_delta")
        close = delta is not None and delta >= -runtime_report.MAX_MIOU_LOSS
        int8_verdict[name] = {
            "speedup_vs_onnx_fp32": fp32 / b1[name]["ms_p50"],
            "miou_delta": delta,
            "offer": bool(faster and close),
        }
    result = {
        "benchmark": "inference_runtime",
        "machine": {
            "cpu_count": os.cpu_count(),
            "threads": args.threads,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnxruntime": __import__("onnxruntime").__version__,
            "load_average_at_end": os.getloadavg(),
        },
        "speed_b0_512": speed,
        "quality_tiny": quality,
        "int8_verdict": int8_verdict,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))

    print(f"SegFormer-B0 512x512, batch 1, {args.threads} threads (median ms, images/s, vs eager):")
    for name, t in b1.items():
        print(
            f"  {name:26s} {t['ms_p50']:8.1f} ms  {t['images_per_s']:6.2f} img/s  x{t['speedup_vs_eager']:.2f}"
        )
    print("sizes (MB): " + ", ".join(f"{k} {v / 1e6:.1f}" for k, v in speed["sizes_bytes"].items()))
    print(f"tiny SegFormer quality (eager mIoU {quality['baseline']['miou']:.3f}):")
    for name, entry in quality["formats"].items():
        if entry["ok"]:
            print(
                f"  {name:26s} mIoU delta {entry['miou_delta']:+.4f}  size x{entry['size_ratio']:.2f}"
            )
        else:
            print(f"  {name:26s} FAILED: {entry['error']}")
    for name, v in int8_verdict.items():
        verdict = "offer" if v["offer"] else "do not offer"
        print(f"  int8 {name}: x{v['speedup_vs_onnx_fp32']:.2f} vs ONNX fp32 -> {verdict}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
