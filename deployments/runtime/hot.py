"""Models kept hot in a long-lived process (an ``inference`` Celery worker or a server).

:class:`HotModels` loads each (artifact, runtime, device) once, wraps it in a
:class:`~.batching.BatchingQueue` so concurrent requests share forward passes, and keeps
at most ``capacity`` of them (least recently used is closed first). Thread-safe; loading
one model does not block requests to the others.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .batching import BatchingQueue
from .predictor import Predictor, create_predictor


@dataclass(frozen=True)
class ModelKey:
    """What identifies a loaded model: artifact directory, runtime and device."""

    artifact_dir: str
    runtime: str
    device: str


class HotModel:
    """One loaded predictor behind its batching queue."""

    def __init__(self, predictor: Predictor, *, max_batch: int, max_wait_ms: float) -> None:
        self.predictor = predictor
        self.queue: BatchingQueue[np.ndarray, np.ndarray] = BatchingQueue(
            predictor.predict_batch,
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            workers=predictor.lanes,
        )

    def predict(
        self, images: Sequence[np.ndarray], timeout: float | None = None
    ) -> list[np.ndarray]:
        """Class maps for ``images``; they may share batches with other callers' images."""
        futures = self.queue.submit_many(list(images))
        return [future.result(timeout=timeout) for future in futures]

    def predict_encoded(
        self,
        images: Sequence[np.ndarray],
        *,
        polygons: bool = False,
        png: bool = False,
        timeout: float | None = None,
    ) -> list[dict[str, Any]]:
        """API payloads (see :func:`~.encoding.encode_class_map`) for ``images``."""
        from .encoding import encode_class_map

        classes = self.predictor.meta.classes
        return [
            encode_class_map(class_map, classes, polygons=polygons, png=png)
            for class_map in self.predict(images, timeout=timeout)
        ]

    def close(self) -> None:
        self.queue.close()


class HotModels:
    """Process-wide cache of hot models.

    Args:
        capacity: how many models stay loaded at once.
        max_batch: most images per forward; default 8 on CUDA and 1 on the CPU, where
            batching bought nothing (SegFormer-B0, 2 cores: batch 4 cost 4% more CPU time
            per image than batch 1) and parallel instances do better.
        max_wait_ms: how long a batch waits for company; 0 (default): batches are the
            requests that queued while the model was busy, and a lone request never waits.
        cache_dir: where ONNX exports are written (default: inside each artifact).
        threads: intra-op threads per runtime.
        cpu_instances: ONNX Runtime on the CPU: forwards that may run side by side
            (default: the CPU count, at most 4; see ``OnnxPredictor``).
    """

    def __init__(
        self,
        *,
        capacity: int = 4,
        max_batch: int | None = None,
        max_wait_ms: float = 0.0,
        cache_dir: str | Path | None = None,
        threads: int | None = None,
        cpu_instances: int | None = None,
    ) -> None:
        self.capacity = capacity
        self.max_batch = max_batch
        self.max_wait_ms = max_wait_ms
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.threads = threads
        self.cpu_instances = cpu_instances or min(4, os.cpu_count() or 1)
        self._models: OrderedDict[ModelKey, HotModel] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[ModelKey, threading.Lock] = {}
        self.loads = 0

    def get(
        self, artifact_dir: str | Path, runtime: str = "onnxruntime", device: str = "cpu"
    ) -> HotModel:
        """The hot model for this key, loading it on first use."""
        key = ModelKey(str(Path(artifact_dir).resolve()), runtime, device)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            load_lock = self._loading.setdefault(key, threading.Lock())
        with load_lock:  # one loader per key; others wait for it, not for every model
            with self._lock:
                if key in self._models:
                    return self._models[key]
            cache = None
            if self.cache_dir is not None:
                cache = self.cache_dir / Path(key.artifact_dir).name
            predictor = create_predictor(
                key.artifact_dir,
                runtime,
                device,
                cache_dir=cache,
                threads=self.threads,
                instances=self.cpu_instances,
            )
            max_batch = self.max_batch or (8 if device == "cuda" else 1)
            hot = HotModel(predictor, max_batch=max_batch, max_wait_ms=self.max_wait_ms)
            evicted: list[HotModel] = []
            with self._lock:
                self._models[key] = hot
                self.loads += 1
                self._loading.pop(key, None)
                while len(self._models) > self.capacity:
                    evicted.append(self._models.popitem(last=False)[1])
        for old in evicted:
            old.close()
        return hot

    def loaded(self) -> list[ModelKey]:
        """Keys currently loaded, least recently used first."""
        with self._lock:
            return list(self._models)

    def evict(self, artifact_dir: str | Path) -> int:
        """Unload every model of one artifact (e.g. when its deployment is deleted)."""
        target = str(Path(artifact_dir).resolve())
        with self._lock:
            keys = [k for k in self._models if k.artifact_dir == target]
            gone = [self._models.pop(k) for k in keys]
        for hot in gone:
            hot.close()
        return len(gone)

    def close(self) -> None:
        with self._lock:
            gone = list(self._models.values())
            self._models.clear()
        for hot in gone:
            hot.close()
