"""Exports of a trained model and what each one costs/gains.

Formats:

* ONNX fp32 (``torch.onnx.export(..., dynamo=False)``, opset 17, dynamic batch axis),
  checked against PyTorch logits within :data:`ONNX_FP32_ATOL`;
* ONNX int8, dynamic (``quantize_dynamic``: int8 weights, activations quantized at run time)
  and static QDQ (``quantize_static`` calibrated on project images);
* ONNX fp16 (weights and compute in half precision, float32 inputs/outputs);
* TorchScript (``torch.jit.trace``);
* global magnitude pruning (``prune.global_unstructured`` + ``prune.remove``).

:func:`export_report` produces all of them and a dict with size, speed and the mIoU delta
on a validation set for each, plus a plain recommendation.
"""

from __future__ import annotations

import copy
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.modeling.metrics import ConfusionMatrix

from .artifact import ArtifactMeta, SemanticLogitsModel
from .predictor import OnnxPredictor, Predictor, TorchPredictor
from .processing import preprocess

ONNX_OPSET = 17
#: Max absolute difference allowed between ONNX Runtime fp32 and PyTorch logits.
ONNX_FP32_ATOL = 1e-3
#: An optimised format is recommended only when it is at least this much faster ...
MIN_SPEEDUP = 1.05
#: ... and loses at most this much validation mIoU.
MAX_MIOU_LOSS = 0.01


class ExportError(RuntimeError):
    """An export could not be produced or failed its check; the message says why."""


def _atomic_target(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _example_input(meta: ArtifactMeta, batch: int = 1) -> torch.Tensor:
    height, width = meta.resolution
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch, 3, height, width, generator=generator)


def export_onnx(
    model: torch.nn.Module, meta: ArtifactMeta, path: str | Path, *, opset: int = ONNX_OPSET
) -> Path:
    """Export ``pixel_values (N,3,H,W) float32 -> logits (N,K+1,h,w) float32`` to ONNX.

    The batch axis is dynamic; H, W are fixed at ``meta.resolution`` (inputs are resized
    to it). The file is written atomically (temp file, then rename).

    Raises:
        ExportError: the exporter failed (message names the family and the reason).
    """
    path = Path(path)
    wrapper = SemanticLogitsModel(model).eval()
    tmp = _atomic_target(path)
    try:
        with torch.no_grad():
            torch.onnx.export(
                wrapper,
                (_example_input(meta),),
                str(tmp),
                dynamo=False,
                opset_version=opset,
                input_names=["pixel_values"],
                output_names=["logits"],
                dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}},
                do_constant_folding=True,
            )
        import onnx

        onnx.checker.check_model(str(tmp))
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(
            f"ONNX export of the {meta.family} model (opset {opset}) failed: {type(exc).__name__}: {reason}"
        ) from exc
    os.replace(tmp, path)
    return path


def onnx_max_abs_diff(
    onnx_path: str | Path, model: torch.nn.Module, meta: ArtifactMeta, batch: np.ndarray
) -> float:
    """Largest |ONNX Runtime - PyTorch| over the logits of a preprocessed batch (N,3,H,W)."""
    from .predictor import ort_session

    session = ort_session(onnx_path)
    (ort_logits,) = session.run(None, {session.get_inputs()[0].name: batch})
    with torch.inference_mode():
        ref = SemanticLogitsModel(model).eval()(torch.from_numpy(batch)).numpy()
    if ort_logits.shape != ref.shape:
        raise ExportError(f"ONNX output shape {ort_logits.shape} differs from PyTorch {ref.shape}")
    return float(np.abs(ort_logits.astype(np.float32) - ref).max())


def check_onnx(
    onnx_path: str | Path,
    model: torch.nn.Module,
    meta: ArtifactMeta,
    batch: np.ndarray,
    *,
    atol: float = ONNX_FP32_ATOL,
) -> float:
    """Raise :class:`ExportError` unless ONNX logits match PyTorch within ``atol``; return the diff."""
    diff = onnx_max_abs_diff(onnx_path, model, meta, batch)
    if not diff <= atol:
        raise ExportError(f"ONNX logits differ from PyTorch by {diff:.3g} (> {atol:g})")
    return diff


def _preprocessed_model(src: Path) -> tuple[Path, Path | None]:
    """Run ORT's quantization pre-processing (shape inference, graph optimisation) if it works."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    tmp = _atomic_target(src.with_name(src.stem + ".pre.onnx"))
    try:
        quant_pre_process(str(src), str(tmp), skip_symbolic_shape=False)
        return tmp, tmp
    except Exception:
        tmp.unlink(missing_ok=True)
        return src, None


def quantize_onnx_dynamic(
    src: str | Path, dst: str | Path, *, op_types: Sequence[str] | None = None
) -> Path:
    """Dynamic int8 quantization: int8 weights, activations quantized per batch at run time.

    Args:
        src: fp32 ONNX file.
        dst: output file.
        op_types: operator types to quantize (default: ORT's choice, Conv and MatMul
            included; ``["MatMul", "Gemm"]`` leaves convolutions in fp32).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = Path(src), Path(dst)
    model_input, cleanup = _preprocessed_model(src)
    tmp = _atomic_target(dst)
    try:
        quantize_dynamic(
            str(model_input),
            str(tmp),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=list(op_types) if op_types else None,
        )
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
        if cleanup:
            cleanup.unlink(missing_ok=True)
    return dst


class ImageCalibrationReader:
    """``CalibrationDataReader`` feeding preprocessed project images one batch at a time."""

    def __init__(
        self,
        meta: ArtifactMeta,
        images: Sequence[np.ndarray],
        input_name: str = "pixel_values",
        batch_size: int = 1,
    ) -> None:
        self._batches = iter(
            [
                {
                    input_name: preprocess(
                        images[i : i + batch_size], meta.resolution, meta.mean, meta.std
                    )
                }
                for i in range(0, len(images), batch_size)
            ]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:  # not needed by MinMax calibration; present for the interface
        raise NotImplementedError("ImageCalibrationReader is single pass")


def quantize_onnx_static(
    src: str | Path,
    dst: str | Path,
    meta: ArtifactMeta,
    calibration_images: Sequence[np.ndarray],
    *,
    per_channel: bool = True,
    op_types: Sequence[str] | None = None,
) -> Path:
    """Static int8 quantization in QDQ format, activation ranges calibrated (MinMax) on images.

    Args:
        src: fp32 ONNX file; dst: output file.
        meta: the artifact metadata (preprocessing settings).
        calibration_images: RGB uint8 images representative of the project (a few dozen).
        per_channel: per-output-channel weight scales (better accuracy for convolutions).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if not calibration_images:
        raise ValueError("static quantization needs at least one calibration image")
    src, dst = Path(src), Path(dst)
    model_input, cleanup = _preprocessed_model(src)
    tmp = _atomic_target(dst)
    try:
        quantize_static(
            str(model_input),
            str(tmp),
            ImageCalibrationReader(meta, calibration_images),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            calibrate_method=CalibrationMethod.MinMax,
            op_types_to_quantize=list(op_types) if op_types else None,
        )
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
        if cleanup:
            cleanup.unlink(missing_ok=True)
    return dst


def convert_onnx_fp16(src: str | Path, dst: str | Path) -> Path:
    """Half-precision weights and compute; inputs and outputs stay float32."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    dst = Path(dst)
    converted = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    tmp = _atomic_target(dst)
    try:
        onnx.save(converted, str(tmp))
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return dst


def export_torchscript(model: torch.nn.Module, meta: ArtifactMeta, path: str | Path) -> Path:
    """Trace ``pixel_values -> logits`` with ``torch.jit.trace`` and save it.

    The trace is made at batch 2 and checked at batch 1, so the batch size stays free.
    Load with ``torch.jit.load(path)``.
    """
    path = Path(path)
    wrapper = SemanticLogitsModel(model).eval()
    tmp = _atomic_target(path)
    try:
        with torch.no_grad():
            traced = torch.jit.trace(
                wrapper,
                (_example_input(meta, 2),),
                check_inputs=[(_example_input(meta, 1),)],
                strict=False,
            )
        torch.jit.save(traced, str(tmp))
        os.replace(tmp, path)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(
            f"TorchScript trace of the {meta.family} model failed: {type(exc).__name__}: {exc}"
        ) from exc
    return path


def prunable_parameters(model: torch.nn.Module) -> list[tuple[torch.nn.Module, str]]:
    """(module, "weight") for every Linear and Conv layer: the weights pruning acts on."""
    kinds = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d)
    return [(m, "weight") for m in model.modules() if isinstance(m, kinds) and m.weight is not None]


def sparsity(model: torch.nn.Module) -> float:
    """Fraction of exact zeros over the prunable weights."""
    params = prunable_parameters(model)
    total = sum(m.weight.numel() for m, _ in params)
    zeros = sum(int((m.weight == 0).sum()) for m, _ in params)
    return zeros / total if total else 0.0


def prune_global_magnitude(
    model: torch.nn.Module, ratio: float
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Zero the ``ratio`` smallest-magnitude weights across all Linear/Conv layers, permanently.

    Works on a deep copy (the input model is untouched). The pruning masks are folded into
    the weights with ``prune.remove`` so the result saves and exports like any model.

    Returns:
        (pruned model, {"ratio", "sparsity", "pruned_weights", "total_weights"}).
    """
    from torch.nn.utils import prune

    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"pruning ratio must be in [0, 1), got {ratio}")
    pruned = copy.deepcopy(model).eval()
    params = prunable_parameters(pruned)
    if not params:
        raise ValueError("model has no Linear or Conv weights to prune")
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=ratio)
    for module, name in params:
        prune.remove(module, name)
    total = sum(m.weight.numel() for m, _ in params)
    zeros = sum(int((m.weight == 0).sum()) for m, _ in params)
    return pruned, {
        "ratio": ratio,
        "sparsity": zeros / total,
        "pruned_weights": zeros,
        "total_weights": total,
    }


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
