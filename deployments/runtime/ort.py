"""ONNX Runtime sessions: execution providers per device and thread settings (shared by
the predictors and by the export checks; no Django)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class RuntimeUnavailable(RuntimeError):
    """The requested runtime or device cannot run on this machine (message says why)."""


def ort_providers(device: str) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise RuntimeUnavailable(
                "device 'cuda' requested but onnxruntime has no CUDAExecutionProvider "
                f"(available: {available}); install onnxruntime-gpu"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def configured_threads() -> int:
    """``TESSERA_INFERENCE_THREADS``, or 0 (the runtime's own choice)."""
    return int(os.environ.get("TESSERA_INFERENCE_THREADS", "0") or 0)


def ort_session(onnx_path: str | Path, device: str = "cpu", threads: int | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` for ``onnx_path`` on ``device``.

    ``threads`` sets intra-op threads (default: ``TESSERA_INFERENCE_THREADS`` or ORT's own).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    threads = threads or configured_threads()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(
        str(onnx_path), sess_options=options, providers=ort_providers(device)
    )
