"""The inference worker's side of deployments: the process's hot models, loading
deployments into them (and preloading, unloading), and the worker end of the predict lane
(``deployments.lane``). Started by ``deployments.tasks`` in a worker that consumes the
``inference`` queue; nothing here runs in the web process.

Settings (``common.conf.setting``: Django setting, else environment variable, else default):
  TESSERA_PREDICT_TIMEOUT_S           how long a forward may wait in the batching queue (30)
  TESSERA_INFERENCE_THREADS           intra-op threads of a runtime in the worker
  TESSERA_INFERENCE_CAPACITY          models kept hot per worker process (4)
  TESSERA_INFERENCE_MAX_BATCH         dynamic batching: images per forward (8 on CUDA, 1 on CPU)
  TESSERA_INFERENCE_MAX_WAIT_MS       dynamic batching: wait for companions (0: batch what queued)
  TESSERA_INFERENCE_CPU_INSTANCES     ONNX Runtime on CPU: forwards side by side (CPUs, max 4)
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.utils import timezone

from common.conf import setting
from common.errors import ApplicationError
from common.logs import request_id_bound
from common.metrics import inference_observe
from deployments.api_keys import api_keys_forget
from deployments.lane import (
    LANE_QUEUE,
    ServiceUnavailable,
    error_answer,
    image_rejected,
    inputs_take,
    predict_limits,
)
from deployments.models import Deployment
from deployments.registry import redis_client, redis_key
from training.models import Artifact

logger = logging.getLogger(__name__)

# Worker side: one HotModels per process (the inference worker runs a thread pool, so
# concurrent predict tasks meet in the same BatchingQueue).
_hot_lock = threading.Lock()
_hot: Any = None
_artifact_dirs: dict[int, Path] = {}


def hot_models() -> Any:
    """The process-wide :class:`deployments.runtime.HotModels`."""
    global _hot
    with _hot_lock:
        if _hot is None:
            from deployments.runtime import HotModels

            _hot = HotModels(
                capacity=setting("TESSERA_INFERENCE_CAPACITY", 4, int),
                max_batch=setting("TESSERA_INFERENCE_MAX_BATCH", None, int),
                max_wait_ms=setting("TESSERA_INFERENCE_MAX_WAIT_MS", 0.0, float),
                cache_dir=Path(settings.VAR_DIR) / "inference-cache",
                threads=setting("TESSERA_INFERENCE_THREADS", None, int),
                cpu_instances=setting("TESSERA_INFERENCE_CPU_INSTANCES", None, int),
            )
        return _hot


def _artifact_dir(artifact_id: int) -> Path:
    from training.selectors import artifact_local_dir

    path = _artifact_dirs.get(artifact_id)
    if path is None or not path.exists():
        path = artifact_local_dir(artifact=Artifact.objects.get(pk=artifact_id))
        _artifact_dirs[artifact_id] = path
    return path


def artifact_unload(*, artifact_id: int) -> int:
    """Worker side: drop this process's hot models of one artifact."""
    path = _artifact_dirs.pop(artifact_id, None)
    if path is None or _hot is None:
        return 0
    return _hot.evict(path)


def _hot_model(artifact_id: int, runtime: str, device: str) -> Any:
    """This process's hot model of an artifact, loading it on first use."""
    return hot_models().get(_artifact_dir(artifact_id), runtime, device)


def loaded_artifact_ids() -> list[int]:
    """Artifacts with a model hot in this process (reported with the worker heartbeat)."""
    if _hot is None:
        return []
    hot_dirs = {key.artifact_dir for key in _hot.loaded()}
    return sorted(i for i, path in list(_artifact_dirs.items()) if str(path.resolve()) in hot_dirs)


def deployment_preload(*, deployment_id: int) -> None:
    """Worker side: load (and warm up) a deployment's model without touching its status;
    failures are the load task's to report."""
    deployment = Deployment.objects.filter(pk=deployment_id).first()
    if deployment is None:
        return
    try:
        _hot_model(deployment.artifact_id, deployment.runtime, deployment.device).predictor.warm_up()
    except Exception:  # noqa: BLE001
        logger.warning("preloading deployment %s failed", deployment_id, exc_info=True)


def deployments_preload_ready() -> list[int]:
    """Worker side, when an inference worker starts: load the ready deployments' models
    (the most recently deployed last, so they stay longest in the LRU; at most as many as
    stay loaded), so a (re)started or added worker serves them hot instead of loading on
    its first request. Returns the deployment ids."""
    ids = list(Deployment.objects.filter(status=Deployment.Status.READY)
               .order_by("-ready_at", "-id").values_list("id", flat=True)[:hot_models().capacity])
    for deployment_id in reversed(ids):
        deployment_preload(deployment_id=deployment_id)
    return ids


def deployment_load(*, deployment_id: int, worker: str = "",
                    loaded: Callable[[], None] | None = None) -> None:
    """Worker side: load the deployment's model into this process and run one warm-up
    forward; mark it ready (with the load time) or failed (with the reason). ``loaded`` runs
    between the two (the worker's heartbeat: a deployment shown ready already counts this
    worker among those holding it)."""
    deployment = Deployment.objects.filter(pk=deployment_id).first()
    if deployment is None or deployment.status != Deployment.Status.DEPLOYING:
        return
    start = time.perf_counter()
    try:
        _hot_model(deployment.artifact_id, deployment.runtime, deployment.device).predictor.warm_up()
    except Exception as exc:  # noqa: BLE001 - every failure is the deployment's reason
        logger.exception("deployment %s failed to load", deployment_id)
        Deployment.objects.filter(pk=deployment_id).update(
            status=Deployment.Status.FAILED, reason=f"{type(exc).__name__}: {exc}"[:5000],
            worker=worker, updated_at=timezone.now())
        api_keys_forget(deployment_id=deployment_id)
        return
    if loaded is not None:
        loaded()
    Deployment.objects.filter(pk=deployment_id, status=Deployment.Status.DEPLOYING).update(
        status=Deployment.Status.READY, reason="", worker=worker,
        load_ms=(time.perf_counter() - start) * 1000.0, ready_at=timezone.now(),
        updated_at=timezone.now())
    api_keys_forget(deployment_id=deployment_id)



# --- the predict lane, worker side ------------------------------------------------------------------
def _decode_inputs(keys: Sequence[str]) -> list[np.ndarray]:
    """The request's images from Redis, decoded (upright RGB); an ApplicationError when one
    is gone (the caller gave up: 503) or cannot be decoded (400/413)."""
    from projects.validation import UploadRejected, decode_rgb

    arrays = []
    for index, data in enumerate(inputs_take(keys)):
        if data is None:
            raise ServiceUnavailable(f"Image {index} expired before a worker took it.",
                                     code="input_expired")
        try:
            arrays.append(decode_rgb(data, **predict_limits()))
        except UploadRejected as exc:
            raise image_rejected(exc, index) from None
    return arrays


def predict_run(*, artifact_id: int, runtime: str, device: str, inputs: Sequence[str],
                polygons: bool = False, png: bool = False, company: bool = False) -> dict[str, Any]:
    """Worker side of :func:`deployment_predict`: ``inputs`` are the Redis keys of the
    encoded images; ``company``: other requests were in flight at the web when it was sent
    (announced to the model as one image more, see ``Predictor.expecting``).

    Returns ``{"ok": True, "results": [...], "inference_ms"}`` or, for a failure, the
    API's error body and status (``lane.error_answer``: errors travel as data)."""
    from deployments.runtime import QueueClosed, QueueFull, RuntimeUnavailable

    start = time.perf_counter()
    try:
        hot = _hot_model(artifact_id, runtime, device)
        with hot.predictor.expecting(len(inputs) + int(company)):
            arrays = _decode_inputs(inputs)
            results = hot.predict_encoded(
                arrays, polygons=polygons, png=png,
                timeout=setting("TESSERA_PREDICT_TIMEOUT_S", 30.0, float))
    except ApplicationError as exc:  # an input that expired or cannot be decoded
        return error_answer(exc)
    except (QueueFull, QueueClosed) as exc:
        return error_answer(ServiceUnavailable(f"The inference worker is overloaded: {exc}",
                                               code="inference_busy"))
    except RuntimeUnavailable as exc:
        return error_answer(ServiceUnavailable(str(exc), code="runtime_unavailable"))
    except Exception as exc:  # noqa: BLE001 - the caller gets the reason, the log the trace
        logger.exception("prediction on artifact %s failed", artifact_id)
        return error_answer(ApplicationError(f"{type(exc).__name__}: {exc}", code="inference_failed",
                                             status_code=500))
    classes = hot.predictor.meta.classes
    for payload in results:
        for prediction in payload["predictions"]:
            label = prediction["label"]
            entry = classes[label] if label < len(classes) else {}
            prediction["class_id"] = entry.get("class_id")
    return {"ok": True, "results": [_order(r) for r in results],
            "inference_ms": (time.perf_counter() - start) * 1000.0}


def predict_lane_serve(stop: threading.Event, *, worker: str, poll_s: float = 1.0) -> None:
    """Worker side of the lane, run by each lane thread of the inference worker named
    ``worker`` until ``stop`` is set: pop a request, mark it taken by this worker (the
    caller watches that worker's heartbeat), answer it on its reply list (the answer
    expires when nobody collects it). A request whose caller gave up (deadline passed)
    is dropped unanswered."""
    client = redis_client()
    while not stop.is_set():
        try:
            item = client.brpop([redis_key(LANE_QUEUE)], timeout=poll_s)
            if item is None:
                continue
            request = json.loads(item[1])
            left_s = request["deadline"] - time.time()
            if left_s <= 0:
                client.delete(*request["inputs"])
                continue
            taken = request.get("taken")  # (absent from a web process of an older version)
            if taken:
                client.set(taken, worker, px=int(left_s * 1000) + 1)
            started = time.perf_counter()
            with request_id_bound(request.get("request_id")):  # the web's X-Request-ID
                answer = predict_run(artifact_id=request["artifact_id"], runtime=request["runtime"],
                                     device=request["device"], inputs=request["inputs"],
                                     polygons=request["polygons"], png=request["png"],
                                     company=request.get("company", False))
                seconds = time.perf_counter() - started
                inference_observe(artifact_id=request["artifact_id"], ok=answer["ok"], seconds=seconds)
                logger.info("prediction on artifact %s: %d image(s), %s, %.1f ms", request["artifact_id"],
                            len(request["inputs"]), "ok" if answer["ok"] else "error", seconds * 1000)
            pipe = client.pipeline(transaction=False)
            pipe.lpush(request["reply"], json.dumps(answer))
            pipe.expire(request["reply"], 60)
            if taken:
                pipe.delete(taken)
            pipe.execute()
        except Exception:  # noqa: BLE001 - Redis may blink; the caller times out with a 503
            logger.warning("inference lane: a request failed", exc_info=True)
            stop.wait(poll_s)


def _order(payload: dict[str, Any]) -> dict[str, Any]:
    keys = ("class_id", "label", "class_name", "rle", "area", "polygons")
    payload["predictions"] = [{k: p[k] for k in keys if k in p} for p in payload["predictions"]]
    return payload
