"""What runs on the ``gpu`` worker (called by ``tasks.py`` only): compute and store one
embedding, and one slice of a precompute job.

Clicks go ahead of background precompute jobs: a running slice stops after the
embedding in progress as soon as an on-demand task is enqueued (``store.on_demand_seq``
changes), so a click waits for at most one embedding of the backlog, not for the slice
or the project (a training run holding the only gpu worker is not interrupted: the
click waits).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from common.errors import ApplicationError
from projects import services as project_services
from projects.models import Asset
from projects.selectors import asset_pixels

from . import store
from .conf import sam_device, weights_dir
from .sam import EmbeddingRecord, get_engine

logger = logging.getLogger(__name__)


def embedding_compute(*, asset: Asset, model_type: str) -> tuple[EmbeddingRecord, bool]:
    """Compute and store the embedding of ``asset`` unless it exists. Runs on a GPU worker.

    Holds a Redis lock per storage key, so two workers never compute the same one.
    Returns (record, computed): ``computed`` is False when it was already stored.
    """
    key = store.embedding_key(asset=asset, model_type=model_type)
    lock = store.lock_key(key)
    token = uuid.uuid4().hex
    deadline = time.monotonic() + store.LOCK_TTL_S
    while not cache.add(lock, token, timeout=store.LOCK_TTL_S):
        if time.monotonic() > deadline:
            raise ApplicationError("Timed out waiting for another worker's embedding.")
        time.sleep(0.2)
    try:
        # The store, not this process's hot cache, is what waiting requests read.
        existing = store.embedding_load(asset=asset, model_type=model_type, use_hot_cache=False)
        if existing is not None:
            return existing, False
        engine = get_engine(model_type, device=sam_device(), weights_dir=weights_dir())
        record = engine.compute_embedding(asset_pixels(asset=asset))
        default_storage.save(key, ContentFile(record.to_npz_bytes()))
        store.embeddings_delete_stale(asset=asset, keep=key)
        store.hot_cache.put(key, record)
        cache.delete(store.failed_key(key))
        return record, True
    except Exception as exc:
        cache.set(store.failed_key(key), f"{type(exc).__name__}: {exc}"[:500], timeout=store.FAILED_TTL_S)
        raise
    finally:
        if cache.get(lock) == token:
            cache.delete(lock)
        cache.delete(store.pending_key(key))


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
        state["on_demand_seen"] = store.on_demand_seq()
    while state["remaining"] and time.monotonic() - started < budget_s:
        seq = store.on_demand_seq()
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
