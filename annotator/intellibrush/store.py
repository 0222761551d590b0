"""Where SAM embeddings live, and the Redis markers the web and the gpu worker share.

  * stored in the default storage under ``embeddings/<asset id>/<image sha256>-<model>.npz``
    (fp16). A changed image has another sha256, so its old embedding is never used;
  * each process keeps a small LRU of decoded ``EmbeddingRecord``s (the hot cache);
  * one computation per embedding: per storage key, a *pending* marker (a task is on the
    queue; set by the web side), a *lock* (a worker computes it) and a *failed* marker
    (why the last computation failed, for the requests waiting on it);
  * the on-demand counter: how many on-demand tasks were ever enqueued; running
    precompute slices watch it change and end early so the click goes first.
"""

from __future__ import annotations

import threading
import zipfile
from collections import OrderedDict

from django.core.cache import cache
from django.core.files.storage import default_storage

from projects.models import Asset

from .conf import hot_cache_size
from .sam import EmbeddingRecord

LOCK_TTL_S = 15 * 60  # longer than any single embedding, so a dead worker's lock expires
FAILED_TTL_S = 60

#: Counts on-demand embedding tasks ever enqueued; precompute slices watch it change.
ON_DEMAND_SEQ_KEY = "intellibrush:on_demand_seq"


def embedding_key(*, asset: Asset, model_type: str) -> str:
    """Storage key of an asset's embedding; changes whenever the image bytes change."""
    return f"embeddings/{asset.pk}/{asset.sha256}-{model_type}.npz"


class HotCache:
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
        limit = hot_cache_size()
        with self._lock:
            self._items[key] = record
            self._items.move_to_end(key)
            while len(self._items) > max(limit, 0):
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


hot_cache = HotCache()


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


def embedding_exists(*, asset: Asset, model_type: str) -> bool:
    """Whether the embedding of ``asset`` is stored (without reading it)."""
    return default_storage.exists(embedding_key(asset=asset, model_type=model_type))


def _embedding_paths(asset_id: int) -> list[str]:
    """Storage paths of an asset's embeddings (every model and image version)."""
    folder = f"embeddings/{asset_id}"
    try:
        _, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotImplementedError, OSError):
        return []
    return [f"{folder}/{name}" for name in files]


def embeddings_delete_stale(*, asset: Asset, keep: str) -> None:
    """Remove this asset's embeddings of earlier image versions (best effort)."""
    for path in _embedding_paths(asset.pk):
        if path != keep and not path.rpartition("/")[2].startswith(asset.sha256):
            default_storage.delete(path)


def embeddings_delete_for_asset(*, asset_id: int) -> None:
    """Delete every stored embedding of an asset (call when the asset is deleted)."""
    for path in _embedding_paths(asset_id):
        default_storage.delete(path)


# --------------------------------------------------------------------------- Redis markers


def lock_key(key: str) -> str:
    return f"intellibrush:lock:{key}"


def pending_key(key: str) -> str:
    return f"intellibrush:pending:{key}"


def failed_key(key: str) -> str:
    return f"intellibrush:failed:{key}"


def on_demand_seq() -> int | None:
    return cache.get(ON_DEMAND_SEQ_KEY)


def on_demand_enqueued() -> None:
    """Tell running precompute slices that an on-demand task is waiting on the queue."""
    if cache.add(ON_DEMAND_SEQ_KEY, 1, timeout=None):
        return
    try:
        cache.incr(ON_DEMAND_SEQ_KEY)
    except ValueError:  # evicted between add and incr
        cache.add(ON_DEMAND_SEQ_KEY, 1, timeout=None)
