"""IntelliBrush services: SAM embeddings (stored, cached, computed once) and click-to-mask.

Where things live:
  * embeddings are computed by Celery tasks on the ``gpu`` queue (``tasks.py``) and
    stored in the default storage under ``embeddings/<asset id>/<image sha256>-<model>.npz``
    (fp16). A changed image has another sha256, so its old embedding is never used;
  * each process keeps a small LRU of decoded ``EmbeddingRecord``s (the hot cache);
  * clicks are decoded in the web process: the exported ONNX decoder in ONNX Runtime (the
    graph browsers run), or a decoder-only SAM in PyTorch (no image encoder);
  * one computation per embedding: a request that finds none enqueues the task only if
    no other request or job already did (an atomic ``cache.add`` marker in Redis), and
    then every waiting request polls the stored result;
  * clicks go ahead of background precompute jobs: on-demand tasks are sent with the
    most urgent priority, and a running precompute slice stops after the embedding in
    progress as soon as an on-demand task is enqueued (a counter in Redis), so a click
    waits for at most one embedding of the backlog, not for the slice or the project
    (a training run holding the only gpu worker is not interrupted: the click waits);
  * without a SAM checkpoint (and a model other than ``tiny``) the classical fallback
    answers, and the response says so and how to install weights.

Configuration (Django settings, else environment): ``TESSERA_SAM_MODEL`` (vit_b | vit_l |
vit_h | tiny; default vit_b), ``TESSERA_SAM_DEVICE`` (auto | cpu | cuda[:n]),
``TESSERA_SAM_WAIT_S`` (how long a request waits for an embedding; default 120),
``TESSERA_SAM_HOT_CACHE`` (records kept per process; default 16),
``TESSERA_SAM_PRECOMPUTE`` (embed new uploads ahead of time; default true),
``TESSERA_SAM_SERVER_ONNX`` (decode server clicks with the exported ONNX decoder in ONNX
Runtime; default true), ``TESSERA_SAM_DECODER_THREADS`` (its threads; default: CPUs),
``TESSERA_WEIGHTS_DIR`` (where checkpoints are looked for).
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
import uuid
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from pycocotools import mask as mask_utils

from common.conf import setting, truthy
from common.errors import ApplicationError
from projects import services as project_services
from projects.models import Asset, Job, Project
from projects.selectors import asset_pixels

from .fallback import INSTALL_HINT, fallback_segment
from .sam import (
    MODEL_TYPES,
    EmbeddingRecord,
    SamEngine,
    SamWeightsNotFound,
    get_engine,
    mask_to_low_res_logits,
    resolve_checkpoint,
)

logger = logging.getLogger(__name__)

JOB_KIND = "sam_embeddings"
_LOCK_TTL_S = 15 * 60  # longer than any single embedding, so a dead worker's lock expires
_FAILED_TTL_S = 60


# --------------------------------------------------------------------------- config




def sam_model_type() -> str:
    """The configured SAM model type (``TESSERA_SAM_MODEL``)."""
    model_type = str(setting("TESSERA_SAM_MODEL", "vit_b"))
    if model_type not in MODEL_TYPES:
        raise ApplicationError(
            f"TESSERA_SAM_MODEL={model_type!r} is not one of {list(MODEL_TYPES)}.",
            code="sam_misconfigured",
            status_code=500,
        )
    return model_type


def sam_device() -> str:
    """Device for embedding on this worker: ``TESSERA_SAM_DEVICE`` or CUDA when present."""
    device = str(setting("TESSERA_SAM_DEVICE", "auto"))
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _weights_dir() -> str | None:
    value = setting("TESSERA_WEIGHTS_DIR", None)
    return str(value) if value else None


def _wait_s() -> float:
    return float(setting("TESSERA_SAM_WAIT_S", 120))


def precompute_enabled() -> bool:
    return setting("TESSERA_SAM_PRECOMPUTE", True, truthy)


def sam_available(model_type: str) -> bool:
    """True when SAM can answer for ``model_type`` (checkpoint found, or ``tiny``)."""
    try:
        resolve_checkpoint(model_type, allow_download=False, weights_dir=_weights_dir())
    except SamWeightsNotFound:
        return False
    return True


def sam_unavailable_error(model_type: str) -> ApplicationError:
    return ApplicationError(
        f"SAM weights for {model_type} are not installed. {INSTALL_HINT}",
        code="sam_unavailable",
        status_code=409,
        details={"model_type": model_type, "install": INSTALL_HINT},
    )


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
        return get_engine(model_type, device="cpu", decoder_only=True, weights_dir=_weights_dir())
    except SamWeightsNotFound:
        raise sam_unavailable_error(model_type) from None


# --------------------------------------------------------------------------- storage + cache


def embedding_key(*, asset: Asset, model_type: str) -> str:
    """Storage key of an asset's embedding; changes whenever the image bytes change."""
    return f"embeddings/{asset.pk}/{asset.sha256}-{model_type}.npz"


class _HotCache:
    """A small thread-safe LRU of decoded records, keyed by storage key."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, EmbeddingRecord] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> EmbeddingRecord | None:
        with self._lock:
            record = self._items.get(key)
            if record is not None:
                self._items.move_to_end(key)
            return record

    def put(self, key: str, record: EmbeddingRecord) -> None:
        limit = int(setting("TESSERA_SAM_HOT_CACHE", 16))
        with self._lock:
            self._items[key] = record
            self._items.move_to_end(key)
            while len(self._items) > max(limit, 0):
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


hot_cache = _HotCache()


def embedding_load(
    *, asset: Asset, model_type: str, use_hot_cache: bool = True
) -> EmbeddingRecord | None:
    """The stored embedding of ``asset`` (hot cache first), or None when there is none yet."""
    key = embedding_key(asset=asset, model_type=model_type)
    record = hot_cache.get(key) if use_hot_cache else None
    if record is not None:
        return record
    try:
        if not default_storage.exists(key):
            return None
        with default_storage.open(key, "rb") as fh:
            record = EmbeddingRecord.from_npz_bytes(fh.read())
    except (FileNotFoundError, zipfile.BadZipFile, EOFError, ValueError, KeyError):
        return None  # absent, or still being written by a worker
    hot_cache.put(key, record)
    return record


def _lock_key(key: str) -> str:
    return f"intellibrush:lock:{key}"


def _pending_key(key: str) -> str:
    return f"intellibrush:pending:{key}"


def _failed_key(key: str) -> str:
    return f"intellibrush:failed:{key}"


#: Counts on-demand embedding tasks ever enqueued; precompute slices watch it change.
_ON_DEMAND_SEQ_KEY = "intellibrush:on_demand_seq"


def _on_demand_seq() -> int | None:
    return cache.get(_ON_DEMAND_SEQ_KEY)


def _on_demand_enqueued() -> None:
    """Tell running precompute slices that an on-demand task is waiting on the queue."""
    if cache.add(_ON_DEMAND_SEQ_KEY, 1, timeout=None):
        return
    try:
        cache.incr(_ON_DEMAND_SEQ_KEY)
    except ValueError:  # evicted between add and incr
        cache.add(_ON_DEMAND_SEQ_KEY, 1, timeout=None)


def embedding_compute(*, asset: Asset, model_type: str) -> tuple[EmbeddingRecord, bool]:
    """Compute and store the embedding of ``asset`` unless it exists. Runs on a GPU worker.

    Holds a Redis lock per storage key, so two workers never compute the same one.
    Returns (record, computed): ``computed`` is False when it was already stored.
    """
    key = embedding_key(asset=asset, model_type=model_type)
    token = uuid.uuid4().hex
    deadline = time.monotonic() + _LOCK_TTL_S
    while not cache.add(_lock_key(key), token, timeout=_LOCK_TTL_S):
        if time.monotonic() > deadline:
            raise ApplicationError("Timed out waiting for another worker's embedding.")
        time.sleep(0.2)
    try:
        # The store, not this process's hot cache, is what waiting requests read.
        existing = embedding_load(asset=asset, model_type=model_type, use_hot_cache=False)
        if existing is not None:
            return existing, False
        engine = get_engine(model_type, device=sam_device(), weights_dir=_weights_dir())
        record = engine.compute_embedding(asset_pixels(asset=asset))
        default_storage.save(key, ContentFile(record.to_npz_bytes()))
        _delete_stale_embeddings(asset=asset, keep=key)
        hot_cache.put(key, record)
        cache.delete(_failed_key(key))
        return record, True
    except Exception as exc:
        cache.set(_failed_key(key), f"{type(exc).__name__}: {exc}"[:500], timeout=_FAILED_TTL_S)
        raise
    finally:
        if cache.get(_lock_key(key)) == token:
            cache.delete(_lock_key(key))
        cache.delete(_pending_key(key))


def _delete_stale_embeddings(*, asset: Asset, keep: str) -> None:
    """Remove this asset's embeddings of earlier image versions (best effort)."""
    folder = f"embeddings/{asset.pk}"
    try:
        _, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotImplementedError, OSError):
        return
    for name in files:
        path = f"{folder}/{name}"
        if path != keep and not name.startswith(asset.sha256):
            default_storage.delete(path)


def embeddings_delete_for_asset(*, asset_id: int) -> None:
    """Delete every stored embedding of an asset (call when the asset is deleted)."""
    folder = f"embeddings/{asset_id}"
    try:
        _, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotImplementedError, OSError):
        return
    for name in files:
        default_storage.delete(f"{folder}/{name}")


def embedding_request(*, asset: Asset, model_type: str) -> bool:
    """Enqueue the embedding task unless one is already pending. True if this call enqueued."""
    from .tasks import intellibrush_embed_asset

    key = embedding_key(asset=asset, model_type=model_type)
    if not cache.add(_pending_key(key), "1", timeout=_LOCK_TTL_S):
        return False
    cache.delete(_failed_key(key))
    # Default priority: on the Redis transport that is the most urgent list, served
    # before the project-wide precompute tasks (sent with priority 9). Then a running
    # precompute slice is told to end early (after the message is in the queue, so the
    # worker's next fetch finds it).
    intellibrush_embed_asset.apply_async(args=[asset.pk, model_type])
    _on_demand_enqueued()
    return True


@dataclass(frozen=True)
class EmbeddingLookup:
    """record; source: "cache" (already stored), "computed" (this request started the
    computation) or "joined" (waited for a computation another request or job started)."""

    record: EmbeddingRecord
    source: str

    @property
    def computed_on_demand(self) -> bool:
        return self.source != "cache"


def embedding_get_or_compute(
    *, asset: Asset, model_type: str, wait_s: float | None = None
) -> EmbeddingLookup:
    """The embedding of ``asset``, computing it on the gpu queue if needed and waiting.

    Raises ApplicationError 503 ``embedding_pending`` when it is not ready within
    ``wait_s`` (the computation keeps going; retry later), or 502 ``embedding_failed``.
    """
    record = embedding_load(asset=asset, model_type=model_type)
    if record is not None:
        return EmbeddingLookup(record, "cache")
    key = embedding_key(asset=asset, model_type=model_type)
    started = embedding_request(asset=asset, model_type=model_type)
    deadline = time.monotonic() + (_wait_s() if wait_s is None else wait_s)
    interval = 0.05
    while True:
        record = embedding_load(asset=asset, model_type=model_type)
        if record is not None:
            return EmbeddingLookup(record, "computed" if started else "joined")
        failure = cache.get(_failed_key(key))
        if failure:
            raise ApplicationError(
                f"Computing the SAM embedding failed: {failure}",
                code="embedding_failed",
                status_code=502,
            )
        if time.monotonic() > deadline:
            raise ApplicationError(
                "The SAM embedding of this image is still being computed; retry shortly.",
                code="embedding_pending",
                status_code=503,
                details={"retry_after_s": 2},
            )
        if cache.get(_pending_key(key)) is None and embedding_load(asset=asset, model_type=model_type) is None:
            # The task ended without a result (e.g. its worker was lost): ask again.
            started = embedding_request(asset=asset, model_type=model_type) or started
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)


# --------------------------------------------------------------------------- clicks


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


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """(H, W) bool -> COCO compressed RLE ``{"size": [H, W], "counts": str}``."""
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """COCO compressed RLE -> (H, W) bool."""
    counts = rle["counts"]
    data = {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return mask_utils.decode(data).astype(bool)


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
            "rle": rle_encode(result.mask),
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
        "rle": rle_encode(result.mask),
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


# --------------------------------------------------------------------------- ahead of time


def embeddings_precompute_start(
    *, project: Project, user=None, asset_ids: list[int] | None = None
) -> Job | None:
    """Start a job that embeds the project's assets (or ``asset_ids``) on the gpu queue.

    Returns the Job (progress visible in the jobs API and ``embeddings_status``), or
    None when SAM is not available (nothing to precompute). Enqueued on commit.
    """
    model_type = sam_model_type()
    if not sam_available(model_type):
        return None
    qs = Asset.objects.filter(project=project).order_by("id")
    if asset_ids is not None:
        qs = qs.filter(pk__in=asset_ids)
    ids = list(qs.values_list("id", flat=True))
    job = project_services.job_create(
        project=project, user=user, kind=JOB_KIND, params={"model_type": model_type, "total": len(ids)}
    )
    from .tasks import intellibrush_embed_project

    state = {"remaining": ids, "done": 0, "total": len(ids), "computed": 0, "errors": [],
             "on_demand_seen": _on_demand_seq()}
    transaction.on_commit(
        lambda: intellibrush_embed_project.apply_async(args=[job.pk, model_type, state], priority=9)
    )
    return job


def embeddings_for_new_assets(*, project: Project, asset_ids: list[int], user=None) -> Job | None:
    """Hook for uploads: precompute the new assets' embeddings when enabled."""
    if not asset_ids or not precompute_enabled():
        return None
    return embeddings_precompute_start(project=project, user=user, asset_ids=asset_ids)


def embeddings_project_step(
    *, job_id: int, model_type: str, state: dict[str, Any], budget_s: float = 10.0
) -> dict[str, Any]:
    """Embed assets of a precompute job for up to ``budget_s`` seconds; report progress.

    ``state``: {"remaining": [asset ids], "done", "total", "computed", "errors",
    "on_demand_seen"}; returns the next state (``remaining`` empty when the job is
    finished). Working in slices lets on-demand requests (more urgent on the queue) run
    between slices instead of after the whole project; and a slice ends before its budget
    as soon as an on-demand task was enqueued since the last look (``on_demand_seen``),
    so that a click waits for at most the embedding in progress. The caller re-enqueues
    the rest with the low priority, behind the click.
    """
    started = time.monotonic()
    state = {**state, "remaining": list(state["remaining"]), "errors": list(state["errors"])}
    if "on_demand_seen" not in state:  # a job enqueued before this field existed
        state["on_demand_seen"] = _on_demand_seq()
    while state["remaining"] and time.monotonic() - started < budget_s:
        seq = _on_demand_seq()
        if seq != state["on_demand_seen"]:
            state["on_demand_seen"] = seq
            break
        asset_id = state["remaining"].pop(0)
        asset = Asset.objects.filter(pk=asset_id).first()
        if asset is not None:
            try:
                _, computed = embedding_compute(asset=asset, model_type=model_type)
                state["computed"] += int(computed)
            except Exception as exc:  # noqa: BLE001 - one bad image must not stop the job
                logger.exception("embedding of asset %s failed", asset_id)
                state["errors"].append({"asset_id": asset_id, "message": str(exc)[:300]})
        state["done"] += 1
        project_services.job_progress(
            job_id=job_id,
            progress=state["done"] / max(state["total"], 1),
            message=f"{state['done']}/{state['total']} embeddings",
        )
    if not state["remaining"]:
        project_services.job_finish(
            job_id=job_id,
            result={
                "model_type": model_type,
                "total": state["total"],
                "computed": state["computed"],
                "already_stored": state["done"] - state["computed"] - len(state["errors"]),
            },
            errors=state["errors"],
            message=f"{state['done'] - len(state['errors'])}/{state['total']} embeddings ready",
        )
    return state


def embeddings_status(*, project: Project) -> dict[str, Any]:
    """How many of the project's assets have a stored embedding, and the latest job."""
    model_type = sam_model_type()
    assets = list(Asset.objects.filter(project=project).only("id", "sha256"))
    ready = sum(
        1 for a in assets if default_storage.exists(embedding_key(asset=a, model_type=model_type))
    )
    job = Job.objects.filter(project=project, kind=JOB_KIND).order_by("-created_at", "-id").first()
    return {
        "model_type": model_type,
        "sam_available": sam_available(model_type),
        "total": len(assets),
        "ready": ready,
        "job": None if job is None else {
            "id": job.pk, "status": job.status, "progress": job.progress,
            "message": job.message, "errors": job.errors,
        },
    }
