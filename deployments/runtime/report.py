"""What each export costs and gains: :func:`export_report` produces every format of
:mod:`.export` and a dict with size, speed and the mIoU delta on a validation set for
each, plus a plain recommendation; :func:`evaluate_predictor` scores one predictor with
training's metrics (no Django)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.modeling.metrics import ConfusionMatrix

from .artifact import ArtifactMeta, SemanticLogitsModel
from .export import (
    ONNX_FP32_ATOL,
    ExportError,
    check_onnx,
    convert_onnx_fp16,
    export_onnx,
    export_torchscript,
    onnx_max_abs_diff,
    prune_global_magnitude,
    quantize_onnx_dynamic,
    quantize_onnx_static,
)
from .predictor import OnnxPredictor, Predictor, TorchPredictor
from .processing import preprocess

#: An optimised format is recommended only when it is at least this much faster ...
MIN_SPEEDUP = 1.05
#: ... and loses at most this much validation mIoU.
MAX_MIOU_LOSS = 0.01


def time_forward(
    run: Callable[[np.ndarray], Any], batch: np.ndarray, *, repeats: int = 10, warmup: int = 2
) -> dict[str, float]:
    """Median latency of ``run(batch)``.

    Returns:
        {"ms_per_batch_p50", "ms_per_image_p50", "images_per_s", "batch_size"}.
    """
    for _ in range(warmup):
        run(batch)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(batch)
        samples.append(time.perf_counter() - start)
    p50 = statistics.median(samples)
    n = batch.shape[0]
    return {
        "batch_size": n,
        "ms_per_batch_p50": p50 * 1000.0,
        "ms_per_image_p50": p50 * 1000.0 / n,
        "images_per_s": n / p50,
    }


def evaluate_predictor(
    predictor: Predictor,
    images: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    *,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Validation metrics of a predictor (training's definitions: mIoU over labels present).

    Args:
        targets: uint8 class maps (0 background, i+1 class i, 255 ignore), one per image.

    Returns:
        training's metrics dict: {"miou", "mean_f1", "pixel_accuracy", "per_class", ...}.
    """
    matrix = ConfusionMatrix(predictor.meta.num_labels)
    for i in range(0, len(images), batch_size):
        preds = predictor.predict_batch(images[i : i + batch_size])
        for pred, target in zip(preds, targets[i : i + batch_size], strict=True):
            matrix.update(pred, target)
    return matrix.compute([c["name"] for c in predictor.meta.classes])


def _file_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _state_dict_bytes(model: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def export_report(
    model: torch.nn.Module,
    meta: ArtifactMeta,
    out_dir: str | Path,
    *,
    val_images: Sequence[np.ndarray],
    val_targets: Sequence[np.ndarray],
    calibration_images: Sequence[np.ndarray] | None = None,
    formats: Iterable[str] = (
        "onnx",
        "onnx-int8-dynamic",
        "onnx-int8-static",
        "onnx-fp16",
        "torchscript",
        "pruned",
    ),
    prune_ratio: float = 0.3,
    speed_batch: int = 1,
    speed_repeats: int = 10,
    threads: int | None = None,
) -> dict[str, Any]:
    """Produce the requested exports in ``out_dir`` and measure each against eager PyTorch.

    Every format's entry has ``ok``; on success ``path``, ``size_bytes``, ``size_ratio``
    (vs the fp32 weights), ``speed`` (see :func:`time_forward`, forward pass only on a
    batch of ``speed_batch`` at the model resolution), ``speedup`` (vs eager),
    ``miou``, ``miou_delta`` (vs eager, on ``val_images``/``val_targets``),
    ``recommended`` (faster by :data:`MIN_SPEEDUP` and within :data:`MAX_MIOU_LOSS`)
    and format-specific checks; on failure ``error`` with the reason. Nothing raises
    for a single format failing.

    Formats: ``onnx``, ``onnx-int8-dynamic``, ``onnx-int8-dynamic-matmul`` (convolutions
    left in fp32), ``onnx-int8-static``, ``onnx-fp16``, ``torchscript``, ``pruned``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    formats = list(formats)
    model = model.eval()
    calibration = list(calibration_images) if calibration_images else list(val_images[:16])
    speed_input = preprocess(
        list(val_images[:1]) * speed_batch, meta.resolution, meta.mean, meta.std
    )
    check_batch = preprocess(list(val_images[:4]), meta.resolution, meta.mean, meta.std)

    eager = TorchPredictor.from_model(model, meta)
    base_eval = evaluate_predictor(eager, val_images, val_targets)
    base_speed = time_forward(eager.forward, speed_input, repeats=speed_repeats)
    base_size = _state_dict_bytes(model)
    report: dict[str, Any] = {
        "family": meta.family,
        "variant": meta.variant,
        "resolution": list(meta.resolution),
        "validation_images": len(val_images),
        "threads": torch.get_num_threads(),
        "baseline": {
            "runtime": "pytorch-eager",
            "size_bytes": base_size,
            "speed": base_speed,
            "miou": base_eval["miou"],
        },
        "formats": {},
    }

    def measured(
        name: str, predictor: Predictor, path: Path, extra: dict[str, Any]
    ) -> dict[str, Any]:
        evaluation = evaluate_predictor(predictor, val_images, val_targets)
        speed = time_forward(predictor.forward, speed_input, repeats=speed_repeats)
        speedup = base_speed["ms_per_image_p50"] / speed["ms_per_image_p50"]
        delta = evaluation["miou"] - base_eval["miou"]
        size = _file_size(path)
        return {
            "ok": True,
            "path": str(path),
            "size_bytes": size,
            "size_ratio": size / base_size,
            "speed": speed,
            "speedup": speedup,
            "miou": evaluation["miou"],
            "miou_delta": delta,
            "recommended": bool(speedup >= MIN_SPEEDUP and delta >= -MAX_MIOU_LOSS),
            **extra,
        }

    onnx_path = out / "model.onnx"
    onnx_error: str | None = None
    needs_onnx = any(f.startswith("onnx") for f in formats)
    if needs_onnx:
        try:
            export_onnx(model, meta, onnx_path)
        except ExportError as exc:
            onnx_error = str(exc)

    for name in formats:
        try:
            if name.startswith("onnx") and onnx_error:
                raise ExportError(onnx_error)
            if name == "onnx":
                diff = check_onnx(onnx_path, model, meta, check_batch)
                predictor = OnnxPredictor(onnx_path, meta, threads=threads)
                entry = measured(
                    name, predictor, onnx_path, {"max_abs_logit_diff": diff, "atol": ONNX_FP32_ATOL}
                )
            elif name in ("onnx-int8-dynamic", "onnx-int8-dynamic-matmul"):
                path = out / f"model.{name[5:]}.onnx"
                op_types = ["MatMul", "Gemm"] if name.endswith("matmul") else None
                quantize_onnx_dynamic(onnx_path, path, op_types=op_types)
                predictor = OnnxPredictor(path, meta, threads=threads, runtime="onnxruntime-int8")
                entry = measured(
                    name,
                    predictor,
                    path,
                    {"max_abs_logit_diff": onnx_max_abs_diff(path, model, meta, check_batch)},
                )
            elif name == "onnx-int8-static":
                path = out / "model.int8-static.onnx"
                quantize_onnx_static(onnx_path, path, meta, calibration)
                predictor = OnnxPredictor(path, meta, threads=threads, runtime="onnxruntime-int8")
                entry = measured(
                    name,
                    predictor,
                    path,
                    {
                        "calibration_images": len(calibration),
                        "max_abs_logit_diff": onnx_max_abs_diff(path, model, meta, check_batch),
                    },
                )
            elif name == "onnx-fp16":
                path = out / "model.fp16.onnx"
                convert_onnx_fp16(onnx_path, path)
                predictor = OnnxPredictor(path, meta, threads=threads)
                entry = measured(
                    name,
                    predictor,
                    path,
                    {"max_abs_logit_diff": onnx_max_abs_diff(path, model, meta, check_batch)},
                )
            elif name == "torchscript":
                path = out / "model.torchscript.pt"
                export_torchscript(model, meta, path)
                scripted = torch.jit.load(str(path))
                predictor = TorchPredictor(scripted, meta)
                with torch.inference_mode():
                    ref = SemanticLogitsModel(model)(torch.from_numpy(check_batch))
                diff = float((scripted(torch.from_numpy(check_batch)) - ref).abs().max())
                entry = measured(name, predictor, path, {"max_abs_logit_diff": diff})
            elif name == "pruned":
                pruned, info = prune_global_magnitude(model, prune_ratio)
                path = out / "pruned"
                pruned.save_pretrained(str(path))
                entry = measured(name, TorchPredictor.from_model(pruned, meta), path, info)
                # Unstructured zeros run through the same dense kernels: any measured
                # "speedup" is noise, so pruning is never recommended for speed.
                entry["recommended"] = False
                entry["note"] = (
                    "unstructured sparsity: same dense compute; helps compressed size only"
                )
            else:
                raise ValueError(f"unknown export format {name!r}")
        except Exception as exc:  # one failing format must not hide the others
            entry = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        report["formats"][name] = entry
    report["recommended"] = [n for n, e in report["formats"].items() if e.get("recommended")]
    return report
