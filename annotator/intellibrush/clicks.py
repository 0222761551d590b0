"""IntelliBrush clicks, answered in the web process: prompt in, the best mask (COCO RLE)
out; the embedding for in-browser decoding; the exported ONNX decoder.

A click is decoded with the exported ONNX decoder in ONNX Runtime (the graph browsers
run), or a decoder-only SAM in PyTorch (no image encoder). Without a SAM checkpoint (and
a model other than ``tiny``) the classical fallback answers, and the response says so
and how to install weights.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from annotator.formats import rle as rlelib
from common.conf import setting, truthy
from common.errors import ApplicationError
from projects.models import Asset
from projects.selectors import asset_pixels

from .conf import sam_available, sam_model_type, sam_unavailable_error, weights_dir
from .fallback import INSTALL_HINT, fallback_segment
from .sam import MODEL_TYPES, SamEngine, SamWeightsNotFound, get_engine, mask_to_low_res_logits
from .services import EmbeddingLookup, embedding_get_or_compute

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prompt:
    """A validated prompt in original-image pixels.

    points (N, 2) float (x, y); labels (N,) int 1/0; box (4,) or None; mask_input:
    previous low-res logits (1, 4h, 4w) or None; previous_mask: (H, W) bool or None.
    """

    points: np.ndarray
    labels: np.ndarray
    box: np.ndarray | None = None
    mask_input: np.ndarray | None = None
    previous_mask: np.ndarray | None = None
    multimask: bool | None = None


def logits_to_b64(logits: np.ndarray) -> dict[str, Any]:
    """Low-res logits as ``{"data": base64 fp16, "shape": [...], "dtype": "float16"}``."""
    array = np.ascontiguousarray(logits, dtype="<f2")
    return {"data": base64.b64encode(array.tobytes()).decode("ascii"), "shape": list(array.shape), "dtype": "float16"}


def logits_from_b64(data: str, shape: tuple[int, ...]) -> np.ndarray:
    raw = base64.b64decode(data, validate=True)
    expected = int(np.prod(shape)) * 2
    if len(raw) != expected:
        raise ApplicationError(
            f"mask_input must be {expected} bytes of float16 (shape {list(shape)}), got {len(raw)}.",
            code="validation_error",
            details={"mask_input": ["Wrong size."]},
        )
    return np.frombuffer(raw, dtype="<f2").astype(np.float32).reshape(shape)


_click_decoders: dict[str, Any] = {}
_click_decoders_lock = threading.Lock()


def click_decoder(model_type: str) -> Any | None:
    """The exported decoder in ONNX Runtime for server clicks, or None (turned off, or the
    export failed: the PyTorch decoder answers instead). The graph is the one browsers run
    and picks the mask by the same rule as ``SamEngine.decode``; on CPU it is the faster
    of the two (vit_b, 2 cores: 37 ms p50 against 59 ms per click)."""
    if not setting("TESSERA_SAM_SERVER_ONNX", True, truthy):
        return None
    with _click_decoders_lock:
        if model_type not in _click_decoders:
            from .onnx_export import OnnxDecoder

            try:
                path = decoder_onnx_file(model_type=model_type)
                threads = setting("TESSERA_SAM_DECODER_THREADS", os.cpu_count() or 1, int)
                _click_decoders[model_type] = OnnxDecoder(path, threads=threads)
            except ApplicationError:
                raise
            except Exception:  # noqa: BLE001 - a missing exporter must not break clicks
                logger.exception("ONNX decoder for %s unavailable; clicks use PyTorch", model_type)
                _click_decoders[model_type] = None
        return _click_decoders[model_type]


def decoder_engine(model_type: str) -> SamEngine:
    """This process's decoder-only SAM (for clicks and the ONNX export); loaded once."""
    try:
        return get_engine(model_type, device="cpu", decoder_only=True, weights_dir=weights_dir())
    except SamWeightsNotFound:
        raise sam_unavailable_error(model_type) from None


def decoder_onnx_file(*, model_type: str | None = None) -> Path:
    """Path of the exported ONNX decoder for ``model_type`` (exported once, cached on disk)."""
    from .onnx_export import cached_decoder_onnx

    model_type = model_type or sam_model_type()
    if model_type not in MODEL_TYPES:
        raise ApplicationError(
            f"model_type must be one of {list(MODEL_TYPES)}.",
            code="validation_error",
            details={"model_type": ["Unknown model type."]},
        )
    if not sam_available(model_type):
        raise sam_unavailable_error(model_type)
    folder = Path(setting("TESSERA_SAM_ONNX_DIR", Path(settings.VAR_DIR) / "intellibrush"))
    return cached_decoder_onnx(decoder_engine(model_type), folder)


def intellibrush_predict(
    *,
    asset: Asset,
    prompt: Prompt,
    return_logits: bool = False,
    wait_s: float | None = None,
) -> dict[str, Any]:
    """Answer one IntelliBrush click for ``asset``: the best mask as COCO RLE and its score.

    Uses SAM when weights are installed (embedding from cache, or computed on the gpu
    queue and waited for); otherwise the classical fallback, and says so.
    """
    model_type = sam_model_type()
    started = time.perf_counter()
    if not sam_available(model_type):
        if prompt.mask_input is not None and prompt.previous_mask is None and not (
            prompt.box is not None or (prompt.labels == 1).any()
        ):
            raise ApplicationError(
                "The classical fallback cannot refine SAM logits: send previous_mask (RLE) "
                "or an include point.",
                code="validation_error",
                details={"mask_input": ["Not usable without SAM."]},
            )
        image = asset_pixels(asset=asset)
        result = fallback_segment(
            image, prompt.points, prompt.labels, prompt.box, prompt.previous_mask
        )
        return {
            "rle": rlelib.encode(result.mask),
            "score": round(float(result.score), 6),
            "method": "fallback",
            "model_type": None,
            "embedding_computed_on_demand": False,
            "embedding_source": None,
            "hint": INSTALL_HINT,
            "low_res_logits": None,
            "timing_ms": {"total": round(1000 * (time.perf_counter() - started), 1)},
        }

    engine = decoder_engine(model_type)
    lookup = embedding_get_or_compute(asset=asset, model_type=model_type, wait_s=wait_s)
    embedded = time.perf_counter()
    record = lookup.record
    mask_input = prompt.mask_input
    if mask_input is None and prompt.previous_mask is not None:
        mask_input = mask_to_low_res_logits(prompt.previous_mask, record)
    elif mask_input is not None and mask_input.size != int(np.prod(record.mask_input_size)):
        raise ApplicationError(
            f"mask_input must have shape [1, {record.mask_input_size[0]}, {record.mask_input_size[1]}].",
            code="validation_error",
            details={"mask_input": ["Wrong shape."]},
        )
    points = prompt.points if len(prompt.points) else None
    labels = prompt.labels if len(prompt.labels) else None
    # An explicit multimask choice is only honoured by the PyTorch decoder; the default
    # rule is the ONNX graph's own.
    onnx = click_decoder(model_type) if prompt.multimask is None else None
    if onnx is not None:
        result = onnx.decode(record, points, labels, prompt.box, mask_input)
    else:
        result = engine.decode(record, points, labels, prompt.box, mask_input, multimask=prompt.multimask)
    done = time.perf_counter()
    return {
        "rle": rlelib.encode(result.mask),
        "score": round(float(result.score), 6),
        "method": "sam",
        "model_type": model_type,
        "embedding_computed_on_demand": lookup.computed_on_demand,
        "embedding_source": lookup.source,
        "hint": None,
        "low_res_logits": logits_to_b64(result.low_res_logits) if return_logits else None,
        "decoder": "onnxruntime" if onnx is not None else "pytorch",
        "timing_ms": {
            "embedding": round(1000 * (embedded - started), 1),
            "decode": round(1000 * (done - embedded), 1),
            "total": round(1000 * (done - started), 1),
        },
    }


def embedding_payload(*, asset: Asset, wait_s: float | None = None) -> tuple[EmbeddingLookup, str]:
    """The embedding for in-browser decoding: (lookup, decoder URL). 409 without weights."""
    model_type = sam_model_type()
    if not sam_available(model_type):
        raise sam_unavailable_error(model_type)
    lookup = embedding_get_or_compute(asset=asset, model_type=model_type, wait_s=wait_s)
    return lookup, f"/api/v1/intellibrush/decoder.onnx?model_type={model_type}"
