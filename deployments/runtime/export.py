"""Exports of a trained model and what each one costs/gains.

Formats:

* ONNX fp32 (``torch.onnx.export(..., dynamo=False)``, opset 17, dynamic batch axis),
  checked against PyTorch logits within :data:`ONNX_FP32_ATOL`;
* ONNX int8, dynamic (``quantize_dynamic``: int8 weights, activations quantized at run time)
  and static QDQ (``quantize_static`` calibrated on project images);
* ONNX fp16 (weights and compute in half precision, float32 inputs/outputs);
* TorchScript (``torch.jit.trace``);
* global magnitude pruning (``prune.global_unstructured`` + ``prune.remove``).

What each one costs and gains (``export_report``) is measured in :mod:`.report`.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .artifact import ArtifactMeta, SemanticLogitsModel
from .ort import ort_session
from .processing import preprocess

ONNX_OPSET = 17
#: Max absolute difference allowed between ONNX Runtime fp32 and PyTorch logits.
ONNX_FP32_ATOL = 1e-3


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
