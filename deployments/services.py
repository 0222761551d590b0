"""Writes of the deployments app: deployments and their loading, API keys, predictions
(web side: validation and dispatch; worker side: running them through ``HotModels``),
artifact exports, export reports and pruning.

The model code is ``deployments.runtime`` (no Django); this module hands it paths and
arrays. Tasks (``deployments.tasks``) are thin wrappers around the ``*_run``/``*_load``
functions here.

Settings (``common.conf.setting``: Django setting, else environment variable, else default):
  TESSERA_PREDICT_TIMEOUT_S           how long a request waits for the worker (30)
  TESSERA_PREDICT_MAX_IMAGES          images per request (16)
  TESSERA_PREDICT_MAX_IMAGE_BYTES     bytes per image (20 MB)
  TESSERA_PREDICT_MAX_IMAGE_PIXELS    pixels per image (40 M)
  TESSERA_PREDICT_MAX_IMAGE_SIDE      pixels per side (20000)
  TESSERA_PREDICT_RATE                default throttle rate per API key ("600/min")
  TESSERA_INFERENCE_THREADS           intra-op threads of a runtime in the worker
  TESSERA_INFERENCE_CAPACITY          models kept hot per worker process (4)
  TESSERA_INFERENCE_MAX_BATCH         dynamic batching: images per forward (8 on CUDA, 1 on CPU)
  TESSERA_INFERENCE_MAX_WAIT_MS       dynamic batching: wait for companions (0: batch what queued)
  TESSERA_INFERENCE_CPU_INSTANCES     ONNX Runtime on CPU: forwards side by side (CPUs, max 4)
  TESSERA_INFERENCE_HEARTBEAT_S       inference worker heartbeat period (2)
  TESSERA_INFERENCE_HEARTBEAT_TTL_S   a worker silent this long counts as gone (8)
  TESSERA_INFERENCE_LANE_THREADS      prediction requests an inference worker takes at once (8)
  TESSERA_EXPORT_EVAL_IMAGES          validation images used by reports and pruning (32)
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from common.conf import setting
from common.errors import ApplicationError
from deployments.models import ApiKey, ArtifactExport, Deployment
from projects.models import Asset, Job, Project
from projects.selectors import asset_pixels
from projects.services import job_create, job_finish, job_progress
from training.models import Artifact

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "tsk_"


class ServiceUnavailable(ApplicationError):
    def __init__(self, message: str, code: str = "inference_unavailable", **kwargs: Any) -> None:
        super().__init__(message, code=code, status_code=503, **kwargs)


# --- inference worker registry -----------------------------------------------------------
# Each inference worker writes a small JSON record with a TTL to Redis every few seconds
# (and removes it on a clean shutdown). The web side reads them to refuse a deployment
# no worker can serve, and to answer 503 at once when no worker is running.

_redis_lock = threading.Lock()
_redis_client: Any = None


def _redis() -> Any:
    global _redis_client
    with _redis_lock:
        if _redis_client is None:
            import redis

            _redis_client = redis.Redis.from_url(settings.REDIS_URL)
        return _redis_client


def redis_key(name: str) -> str:
    """``name`` under this installation's prefix (TESSERA_CACHE_PREFIX, read at each call:
    tests give workers prefixes of their own)."""
    return f"{setting('TESSERA_CACHE_PREFIX', 'tessera')}:{name}"


def _registry_keys() -> tuple[str, str]:
    return redis_key("inference-workers"), redis_key("inference-worker:")


def inference_worker_info(name: str) -> dict[str, Any]:
    """What this process can run: {"name", "pid", "cuda", "onnx_providers", "runtimes"}."""
    import torch

    try:
        import onnxruntime

        providers = list(onnxruntime.get_available_providers())
    except ImportError:
        providers = []
    return {
        "name": name,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "cuda": bool(torch.cuda.is_available()),
        "onnx_providers": providers,
    }


def inference_worker_heartbeat(*, info: dict[str, Any], ttl_s: float) -> None:
    """Announce (or refresh) one inference worker for ``ttl_s`` seconds."""
    names, record = _registry_keys()
    client = _redis()
    pipe = client.pipeline()
    pipe.sadd(names, info["name"])
    pipe.set(record + info["name"], json.dumps(info), px=int(ttl_s * 1000))
    pipe.execute()


def inference_worker_forget(*, name: str) -> None:
    """Remove a worker from the registry (clean shutdown)."""
    names, record = _registry_keys()
    client = _redis()
    pipe = client.pipeline()
    pipe.srem(names, name)
    pipe.delete(record + name)
    pipe.execute()


def runtime_supported(worker: dict[str, Any], runtime: str, device: str) -> str | None:
    """None when ``worker`` can run (runtime, device); otherwise the reason it cannot."""
    providers = worker.get("onnx_providers") or []
    if runtime.startswith("onnxruntime"):
        wanted = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
        if wanted not in providers:
            return f"onnxruntime there has no {wanted} (has {providers or 'no onnxruntime'})"
        return None
    if device == "cuda" and not worker.get("cuda"):
        return "torch there sees no CUDA device"
    return None


# --- deployments ---------------------------------------------------------------------------
def deployment_create(*, artifact: Artifact, user, name: str = "", runtime: str = "onnxruntime",
                      device: str = "cpu", replicas: int = 1) -> Deployment:
    """Check that running inference workers can serve (runtime, device) with ``replicas``
    processes, record the deployment and enqueue its load on the ``inference`` queue."""
    from deployments.selectors import inference_workers

    if runtime not in Deployment.Runtime.values:
        raise ApplicationError(f"Unknown runtime {runtime!r}.", details={"runtime": Deployment.Runtime.values})
    if device not in Deployment.Device.values:
        raise ApplicationError(f"Unknown device {device!r}.", details={"device": Deployment.Device.values})
    if replicas < 1:
        raise ApplicationError("replicas must be at least 1.")
    workers = inference_workers()
    if not workers:
        raise ApplicationError(
            "No inference worker is running, so nothing could load this deployment. Start one "
            "(celery -A config worker -Q inference -P threads) and try again.",
            code="no_inference_worker")
    refusals = {w["name"]: runtime_supported(w, runtime, device) for w in workers}
    capable = [n for n, why in refusals.items() if why is None]
    if not capable:
        reasons = "; ".join(f"{n}: {why}" for n, why in refusals.items())
        raise ApplicationError(
            f"No inference worker can run {runtime} on {device} ({reasons}).",
            code="runtime_unavailable", details={"workers": refusals})
    if replicas > len(capable):
        raise ApplicationError(
            f"{replicas} replicas asked for, but only {len(capable)} running inference worker(s) "
            f"can run {runtime} on {device}.", code="not_enough_workers",
            details={"capable_workers": capable})
    with transaction.atomic():
        deployment = Deployment.objects.create(
            project_id=artifact.project_id, artifact=artifact, runtime=runtime, device=device,
            replicas=replicas, name=(name or f"{artifact.name} ({runtime}, {device})")[:200],
            created_by=user if user and user.is_authenticated else None,
        )
        transaction.on_commit(lambda: _enqueue_load(deployment.pk))
    return deployment


def _enqueue_load(deployment_id: int) -> None:
    """One worker loads the deployment and marks it ready (or failed, with the reason);
    every other inference worker preloads it in the background, since any of them may
    take its next request from the shared queue."""
    from deployments.tasks import deployment_load

    deployment_load.delay(deployment_id)
    _broadcast("tessera_preload_deployment", deployment_id=deployment_id)


def deployment_delete(*, deployment: Deployment) -> None:
    """Delete the deployment and its keys; workers unload the artifact when no other
    deployment uses it."""
    artifact_id = deployment.artifact_id
    with transaction.atomic():
        deployment.delete()
        if not Deployment.objects.filter(artifact_id=artifact_id).exists():
            transaction.on_commit(lambda: _broadcast_unload(artifact_id))


def _broadcast_unload(artifact_id: int) -> None:
    _broadcast("tessera_unload_artifact", artifact_id=artifact_id)


def _broadcast(command: str, **arguments: Any) -> None:
    """Tell every worker (control commands; inference workers act, others ignore it).
    Best effort: preloading and unloading are optimisations (lazy loads and the LRU cover
    a worker that missed it)."""
    from config.celery_app import app

    try:
        app.control.broadcast(command, arguments=arguments)
    except Exception:  # noqa: BLE001
        logger.warning("could not broadcast %s %s", command, arguments, exc_info=True)


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


# --- API keys ---------------------------------------------------------------------------------
def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def api_key_create(*, deployment: Deployment, user, name: str = "", rate: str = "") -> tuple[ApiKey, str]:
    """A new key for ``deployment``. Returns (row, token); the token is not stored (only
    its sha256), so this is the only time it can be shown."""
    if rate:
        from deployments.auth import parse_rate

        try:
            parse_rate(rate)
        except ValueError as exc:
            raise ApplicationError(str(exc), details={"rate": [str(exc)]}) from None
    prefix = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        deployment=deployment, name=name[:200], prefix=prefix, hashed_key=_hash_token(token),
        rate=rate, created_by=user if user and user.is_authenticated else None)
    return key, token


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


# The predict endpoint authenticates every request: its key (with the deployment) is cached
# in Redis so that a request needs no database connection (under ASGI each request runs in
# a new thread, and a new PostgreSQL connection costs ~10 ms). ApiKey and Deployment saves
# and deletes drop the cached rows (deployments.models receivers), as do the queryset
# updates in this module; anything else that updates them with a bare queryset
# ``update()`` must call ``api_keys_forget``. Entries live at most API_KEY_CACHE_S, which
# also bounds the effect of a request re-caching a row while it is being changed.
API_KEY_CACHE_S = 10


def _api_key_cache_name(prefix: str) -> str:
    return f"deployments:api-key:{prefix}"


def api_keys_forget(*, prefixes: Sequence[str] = (), deployment_id: int | None = None) -> None:
    """Drop cached keys: these prefixes, and every key of ``deployment_id``."""
    from django.core.cache import cache

    names = [_api_key_cache_name(p) for p in prefixes]
    if deployment_id is not None:
        names += [_api_key_cache_name(p) for p in
                  ApiKey.objects.filter(deployment_id=deployment_id).values_list("prefix", flat=True)]
    if names:
        cache.delete_many(names)


def api_key_authenticate(*, token: str) -> ApiKey | None:
    """The live key whose token this is (its ``deployment`` loaded), or None (unknown,
    malformed or revoked)."""
    from django.core.cache import cache

    parts = token.split("_")
    if len(parts) < 3 or not token.startswith(TOKEN_PREFIX):
        return None
    name = _api_key_cache_name(parts[1])
    key = cache.get(name)
    if key is None:
        key = ApiKey.objects.filter(prefix=parts[1]).select_related("deployment").first()
        if key is None:
            return None
        cache.set(name, key, API_KEY_CACHE_S)
    if not hmac.compare_digest(key.hashed_key, _hash_token(token)):
        return None
    if key.revoked_at is not None:
        return None
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        # At most one write a minute per key: last_used is for people, not accounting.
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
        cache.set(name, key, API_KEY_CACHE_S)
    return key


# --- predictions: web side ----------------------------------------------------------------------
# A prediction travels over Redis, not as a Celery task: the web process stores each
# image's raw bytes under a key that expires with the request and pushes a small request
# record onto the inference list; a lane thread of an inference worker pops it, decodes
# the pixels, predicts and pushes the answer onto a reply list the web process waits on
# (BRPOP). One round trip each way: a Celery task with its result backend cost ~4-9 ms
# more per request (message envelope, task tracing, result store + pub/sub).
# The web process checks each image's header only (format, bytes, pixel limits); the
# worker decodes every pixel once, so corrupt data comes back as a 400 from there.
@dataclass
class PredictImage:
    """An accepted input image: its encoded bytes and the size its header declares."""

    data: bytes
    width: int
    height: int


def _predict_limits() -> dict[str, int]:
    return {"max_bytes": setting("TESSERA_PREDICT_MAX_IMAGE_BYTES", 20 * 1024 * 1024, int),
            "max_pixels": setting("TESSERA_PREDICT_MAX_IMAGE_PIXELS", 40_000_000, int),
            "max_side": setting("TESSERA_PREDICT_MAX_IMAGE_SIDE", 20_000, int)}


def _rejected(exc: Any, index: int) -> dict[str, Any]:
    """An UploadRejected as an error payload (400, or 413 for too many bytes or pixels)."""
    too_large = exc.code in ("file_too_large", "too_many_pixels")
    return {"code": exc.code, "status": 413 if too_large else 400,
            "message": f"Image {index}: {exc.message}", "details": {"image": index}}


def _error(error: dict[str, Any]) -> ApplicationError:
    return ApplicationError(error["message"], code=error["code"], status_code=error["status"],
                            details=error.get("details"))


def predict_image_check(*, data: bytes, index: int = 0) -> PredictImage:
    """Header checks of one input image: 400 for data that is not a supported image, 413
    for too many bytes or pixels. Its pixels are decoded (and checked) by the worker."""
    from projects.validation import UploadRejected, inspect_image

    try:
        header = inspect_image(data, **_predict_limits())
    except UploadRejected as exc:
        raise _error(_rejected(exc, index)) from None
    return PredictImage(data, header.width, header.height)


def decode_base64_image(value: Any, index: int = 0) -> bytes:
    """Bytes of a base64 string (a ``data:image/...;base64,`` prefix is allowed)."""
    if not isinstance(value, str) or not value:
        raise ApplicationError(f"Image {index} must be a non-empty base64 string.",
                               code="invalid_image", details={"image": index})
    if value.startswith("data:"):
        value = value.split(",", 1)[-1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApplicationError(f"Image {index} is not valid base64.", code="invalid_image",
                               details={"image": index}) from None


LANE_QUEUE = "predict-requests"  # the Redis list of prediction requests (under redis_key)


_in_flight: Counter[int] = Counter()  # deployment id -> prediction requests in this process
_in_flight_lock = threading.Lock()


@contextmanager
def predict_in_flight(deployment_id: int) -> Iterator[None]:
    """Web side: count this process's prediction requests per deployment from the moment
    the view starts (before the upload is parsed). A request sent while more of them are in
    flight than workers hold the model tells its worker so (``company``), and the first
    request of a burst already shares that worker's cores with the ones right behind it
    instead of starting alone on every core."""
    with _in_flight_lock:
        _in_flight[deployment_id] += 1
    try:
        yield
    finally:
        with _in_flight_lock:
            _in_flight[deployment_id] -= 1
            if not _in_flight[deployment_id]:
                del _in_flight[deployment_id]


def _lane_call(request: dict[str, Any], images: Sequence[PredictImage],
               timeout: float) -> dict[str, Any]:
    """Web side of the lane: store the images, queue ``request`` and wait for the answer
    (``{"ok", "results", "inference_ms"}`` or ``{"ok": False, "error"}``). 503 when no
    worker answered within ``timeout`` seconds, and sooner when the worker that took the
    request stopped sending heartbeats (killed mid-request) or, while nobody took it,
    every worker did; the inputs expire with the request."""
    token = uuid.uuid4().hex
    inputs = [redis_key(f"predict-input:{token}:{i}") for i in range(len(images))]
    reply, taken = redis_key(f"predict-reply:{token}"), redis_key(f"predict-taken:{token}")
    ttl_ms = max(1, int(timeout * 1000))
    client = _redis()
    pipe = client.pipeline(transaction=False)
    for key, image in zip(inputs, images, strict=True):
        pipe.set(key, image.data, px=ttl_ms)
    queued = json.dumps({**request, "inputs": inputs, "reply": reply, "taken": taken,
                         "deadline": time.time() + timeout})
    pipe.lpush(redis_key(LANE_QUEUE), queued)
    pipe.execute()
    deadline = time.monotonic() + timeout
    failure = ("inference_timeout", f"No inference worker answered within {timeout:g} s.")
    while (remaining := deadline - time.monotonic()) > 0:
        answer = client.brpop([reply], timeout=min(LANE_CHECK_S, remaining))
        if answer is not None:
            return json.loads(answer[1])
        if lost := _lane_worker_lost(taken):
            failure = lost
            break
    # Withdraw the request if it still waits; a worker that took it finds the images gone.
    pipe = client.pipeline(transaction=False)
    pipe.lrem(redis_key(LANE_QUEUE), 1, queued)
    pipe.delete(*inputs)
    pipe.execute()
    raise ServiceUnavailable(failure[1], code=failure[0])


LANE_CHECK_S = 1.0  # how often a waiting request checks that its worker is still alive


def _lane_worker_lost(taken: str) -> tuple[str, str] | None:
    """(code, message) when the request behind ``taken`` can no longer be answered: the
    worker holding it stopped sending heartbeats, or nobody took it and no worker is left."""
    from deployments.selectors import inference_workers

    holder = _redis().get(taken)
    holder = holder.decode() if isinstance(holder, bytes) else holder
    alive = {worker["name"] for worker in inference_workers()}
    if holder is not None and holder not in alive:
        return ("inference_worker_lost", f"The inference worker {holder} stopped sending "
                "heartbeats while it held this request.")
    if holder is None and not alive:
        return ("no_inference_worker", "No inference worker is running any more; the "
                "prediction was not started.")
    return None


def _inputs_take(keys: Sequence[str]) -> list[bytes | None]:
    pipe = _redis().pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
    pipe.delete(*keys)
    return pipe.execute()[:-1]


def deployment_predict(*, deployment: Deployment, images: Sequence[PredictImage],
                       polygons: bool = False, png: bool = False) -> list[dict[str, Any]]:
    """Run ``images`` through the deployment on an inference worker.

    Returns one payload per image: ``{"width", "height", "predictions": [{"class_id",
    "label", "class_name", "rle", "area"[, "polygons"]}][, "png"], "timing_ms"}``.
    Raises 409 (not ready), 400/413 (an image the worker could not decode), 503 (no
    inference worker, or none answered in time)."""
    from deployments.selectors import inference_workers

    if deployment.status != Deployment.Status.READY:
        detail = f": {deployment.reason}" if deployment.reason else "."
        raise ApplicationError(f"The deployment is {deployment.status}, not ready{detail}",
                               code="deployment_not_ready", status_code=409,
                               details={"status": deployment.status})
    if not images:
        raise ApplicationError("No image was given (multipart `image`/`images`, or JSON "
                               "`image`/`images` as base64).", code="no_image")
    workers = inference_workers()
    if not workers:
        raise ServiceUnavailable("No inference worker is running; predictions cannot be served "
                                 "right now.", code="no_inference_worker")
    holders = sum(deployment.artifact_id in w.get("artifacts", ()) for w in workers) or len(workers)
    timeout = setting("TESSERA_PREDICT_TIMEOUT_S", 30.0, float)
    start = time.perf_counter()
    answer = _lane_call({"artifact_id": deployment.artifact_id, "runtime": deployment.runtime,
                         "device": deployment.device, "polygons": polygons, "png": png,
                         "company": _in_flight[deployment.pk] > holders}, images, timeout)
    if not answer.get("ok"):
        error = answer.get("error", {})
        raise _error({"code": "inference_failed", "status": 500,
                      "message": f"The inference worker failed: {answer!r}", **error})
    total_ms = (time.perf_counter() - start) * 1000.0
    for payload in answer["results"]:
        payload["timing_ms"] = {"total": round(total_ms, 2),
                                "inference": round(answer["inference_ms"], 2)}
    return answer["results"]


# --- predictions: worker side ----------------------------------------------------------------------
class _InputError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["message"])
        self.error = error


def _decode_inputs(keys: Sequence[str]) -> list[np.ndarray]:
    """The request's images from Redis, decoded (upright RGB); _InputError when one is
    gone (the caller gave up) or cannot be decoded."""
    from projects.validation import UploadRejected, decode_rgb

    arrays = []
    for index, data in enumerate(_inputs_take(keys)):
        if data is None:
            raise _InputError({"code": "input_expired", "status": 503,
                               "message": f"Image {index} expired before a worker took it."})
        try:
            arrays.append(decode_rgb(data, **_predict_limits()))
        except UploadRejected as exc:
            raise _InputError(_rejected(exc, index)) from None
    return arrays


def predict_run(*, artifact_id: int, runtime: str, device: str, inputs: Sequence[str],
                polygons: bool = False, png: bool = False, company: bool = False) -> dict[str, Any]:
    """Worker side of :func:`deployment_predict`: ``inputs`` are the Redis keys of the
    encoded images; ``company``: other requests were in flight at the web when it was sent
    (announced to the model as one image more, see ``Predictor.expecting``).

    Returns ``{"ok": True, "results": [...], "inference_ms"}`` or ``{"ok": False,
    "error": {"code", "message", "status"[, "details"]}}`` (errors travel as data)."""
    from deployments.runtime import QueueClosed, QueueFull, RuntimeUnavailable

    start = time.perf_counter()
    try:
        hot = _hot_model(artifact_id, runtime, device)
        with hot.predictor.expecting(len(inputs) + int(company)):
            arrays = _decode_inputs(inputs)
            results = hot.predict_encoded(
                arrays, polygons=polygons, png=png,
                timeout=setting("TESSERA_PREDICT_TIMEOUT_S", 30.0, float))
    except _InputError as exc:
        return {"ok": False, "error": exc.error}
    except (QueueFull, QueueClosed) as exc:
        return {"ok": False, "error": {"code": "inference_busy", "status": 503,
                                       "message": f"The inference worker is overloaded: {exc}"}}
    except RuntimeUnavailable as exc:
        return {"ok": False, "error": {"code": "runtime_unavailable", "status": 503,
                                       "message": str(exc)}}
    except Exception as exc:  # noqa: BLE001 - the caller gets the reason, the log the trace
        logger.exception("prediction on artifact %s failed", artifact_id)
        return {"ok": False, "error": {"code": "inference_failed", "status": 500,
                                       "message": f"{type(exc).__name__}: {exc}"}}
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
    client = _redis()
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
            answer = predict_run(artifact_id=request["artifact_id"], runtime=request["runtime"],
                                 device=request["device"], inputs=request["inputs"],
                                 polygons=request["polygons"], png=request["png"],
                                 company=request.get("company", False))
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


# --- artifacts: validation data, storing new ones ---------------------------------------------------
def artifact_validation_pairs(*, artifact: Artifact, limit: int | None = None) -> tuple[
        list[np.ndarray], list[np.ndarray]]:
    """(images, targets) to measure an artifact on: the validation images of its run, else
    the project's labelled val-split assets. Targets are class maps in the artifact's
    labels (0 background, ``classes[i]`` = i), mapped through the class ids it was trained on."""
    from annotator.selectors import IGNORE_LABEL, class_labels, mask_semantic_map

    limit = limit or setting("TESSERA_EXPORT_EVAL_IMAGES", 32, int)
    labels = {int(c["class_id"]): int(c["index"]) for c in artifact.meta.get("classes", [])
              if c.get("class_id") is not None}
    if not labels:
        labels = class_labels(project=artifact.project)
    # pixels of the ignore class are left out of the scores (255 = ignore)
    labels.update({pk: label for pk, label in class_labels(project=artifact.project).items()
                   if label == IGNORE_LABEL})
    ids: list[int] = []
    run = artifact.run
    if run is not None and run.dataset.get("ids"):
        ids = list(run.dataset["ids"].get("val") or [])
    if not ids:
        ids = list(Asset.objects.filter(project_id=artifact.project_id, split=Asset.Split.VAL,
                                        mask_set__isnull=False).order_by("id")
                   .values_list("id", flat=True))
    images, targets = [], []
    for asset in Asset.objects.filter(id__in=ids[:limit]).select_related("project").order_by("id"):
        target = mask_semantic_map(asset=asset, labels=labels)
        if target is None:
            continue
        images.append(asset_pixels(asset=asset))
        targets.append(target.astype(np.uint8))
    return images, targets


def artifact_create_from_dir(*, project: Project, directory: Path, meta: dict[str, Any],
                             name: str, user=None) -> Artifact:
    """Record a run-less artifact (e.g. a pruned copy) from a local directory."""
    from training.services import artifact_store

    return artifact_store(project_id=project.pk, directory=directory, meta=meta, name=name,
                          user=user)


# --- exports ---------------------------------------------------------------------------------------------
EXPORT_FILENAMES = {
    "onnx": "model.onnx",
    "onnx-int8": "model.int8.onnx",
    "torchscript": "model.torchscript.pt",
    "bundle": "bundle.zip",
}


def artifact_export_get_or_start(*, artifact: Artifact, format: str, user,
                                 rebuild: bool = False) -> ArtifactExport:
    """The export row of (artifact, format); a build is started on the ``default`` queue
    when there is none yet (or ``rebuild`` after a failure)."""
    if format not in EXPORT_FILENAMES:
        raise ApplicationError(f"Unknown export format {format!r}.",
                               details={"format": list(EXPORT_FILENAMES)})
    with transaction.atomic():
        export, created = ArtifactExport.objects.select_for_update().get_or_create(
            artifact=artifact, format=format)
        if created or (rebuild and export.status == ArtifactExport.Status.FAILED):
            job = job_create(project=artifact.project, user=user, kind="artifact_export",
                             params={"artifact_id": artifact.pk, "format": format})
            export.status, export.error, export.job = ArtifactExport.Status.BUILDING, "", job
            export.save(update_fields=["status", "error", "job"])
            transaction.on_commit(lambda: _enqueue_default("artifact_export_build", export.pk))
    return export


def _enqueue_default(task_name: str, object_id: int) -> None:
    from deployments import tasks

    getattr(tasks, task_name).delay(object_id)


def artifact_export_build(*, export_id: int) -> None:
    """Build one export file into default storage (runs on the ``default`` queue)."""
    from deployments.runtime import build_bundle_from_artifact, load_model
    from deployments.runtime import export as runtime_export
    from training.selectors import artifact_local_dir

    export = ArtifactExport.objects.select_related("artifact").get(pk=export_id)
    job_id = export.job_id
    if job_id:
        job_progress(job_id=job_id, progress=0.1, message=f"Exporting {export.format}...")
    tmp = Path(tempfile.mkdtemp(prefix="tessera-export-"))
    try:
        local = artifact_local_dir(artifact=export.artifact)
        out = tmp / EXPORT_FILENAMES[export.format]
        if export.format == "bundle":
            build_bundle_from_artifact(local, out, cache_dir=tmp)
        else:
            model, meta = load_model(local)
            if export.format == "torchscript":
                runtime_export.export_torchscript(model, meta, out)
            else:
                fp32 = tmp / "model.onnx"
                runtime_export.export_onnx(model, meta, fp32)
                if export.format == "onnx-int8":
                    runtime_export.quantize_onnx_dynamic(fp32, out)
        name = f"exports/artifacts/{export.artifact_id}/{uuid.uuid4().hex[:8]}-{out.name}"
        with open(out, "rb") as fh:
            stored = default_storage.save(name, File(fh))
        size = out.stat().st_size
    except Exception as exc:  # noqa: BLE001 - the reason goes to the row and the job
        logger.exception("export %s failed", export_id)
        reason = f"{type(exc).__name__}: {exc}"[:5000]
        ArtifactExport.objects.filter(pk=export_id).update(
            status=ArtifactExport.Status.FAILED, error=reason, finished_at=timezone.now())
        if job_id:
            job_finish(job_id=job_id, errors=[{"message": reason}], message="Export failed.")
        return
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ArtifactExport.objects.filter(pk=export_id).update(
        status=ArtifactExport.Status.READY, storage_name=stored, size_bytes=size,
        finished_at=timezone.now())
    if job_id:
        job_finish(job_id=job_id, message=f"{export.format} export ready ({size} bytes).", result={
            "artifact_id": export.artifact_id, "format": export.format, "size_bytes": size,
            "download_url": f"/api/v1/artifacts/{export.artifact_id}/export/?format={export.format}"})


REPORT_FORMATS = ("onnx", "onnx-int8-dynamic", "onnx-int8-static", "onnx-fp16", "torchscript",
                  "pruned")


def artifact_report_start(*, artifact: Artifact, user, formats: Sequence[str] = REPORT_FORMATS,
                          prune_ratio: float = 0.3) -> Job:
    """Start measuring the export formats (size, speed, mIoU delta) on the default queue."""
    unknown = sorted(set(formats) - set(REPORT_FORMATS) - {"onnx-int8-dynamic-matmul"})
    if unknown:
        raise ApplicationError(f"Unknown report formats {unknown}.",
                               details={"formats": list(REPORT_FORMATS)})
    if not 0.0 <= prune_ratio < 1.0:
        raise ApplicationError("prune_ratio must be in [0, 1).")
    with transaction.atomic():
        job = job_create(project=artifact.project, user=user, kind="artifact_report",
                         params={"artifact_id": artifact.pk, "formats": list(formats),
                                 "prune_ratio": prune_ratio})
        transaction.on_commit(lambda: _enqueue_default("artifact_report_run", job.pk))
    return job


def artifact_report_run(*, job_id: int) -> None:
    """Compute ``export_report`` for the job's artifact on its validation images."""
    from deployments.runtime import export as runtime_export
    from deployments.runtime import load_model
    from training.selectors import artifact_local_dir

    job = Job.objects.get(pk=job_id)
    params = job.params
    tmp = Path(tempfile.mkdtemp(prefix="tessera-report-"))
    try:
        artifact = Artifact.objects.select_related("run", "project").get(pk=params["artifact_id"])
        job_progress(job_id=job_id, progress=0.05, message="Reading validation images...")
        images, targets = artifact_validation_pairs(artifact=artifact)
        if not images:
            raise ApplicationError("The artifact's project has no labelled validation images "
                                   "to measure the exports on.", code="no_validation_data")
        job_progress(job_id=job_id, progress=0.1, message="Exporting and measuring...")
        model, meta = load_model(artifact_local_dir(artifact=artifact))
        report = runtime_export.export_report(
            model, meta, tmp, val_images=images, val_targets=targets,
            formats=params.get("formats") or REPORT_FORMATS,
            prune_ratio=float(params.get("prune_ratio", 0.3)),
            threads=setting("TESSERA_INFERENCE_THREADS", None, int))
    except Exception as exc:  # noqa: BLE001
        logger.exception("export report %s failed", job_id)
        message = exc.message if isinstance(exc, ApplicationError) else f"{type(exc).__name__}: {exc}"
        job_finish(job_id=job_id, errors=[{"message": message}], message="Report failed.")
        return
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for entry in report["formats"].values():
        entry.pop("path", None)  # a temporary path on the worker means nothing to a client
    report["artifact_id"] = artifact.pk
    job_finish(job_id=job_id, result=report, message="Report ready.")


def artifact_prune_start(*, artifact: Artifact, user, ratio: float) -> Job:
    """Start pruning (global magnitude, unstructured) into a new artifact."""
    if not 0.0 < ratio < 1.0:
        raise ApplicationError("ratio must be between 0 and 1 (exclusive).", details={"ratio": [ratio]})
    with transaction.atomic():
        job = job_create(project=artifact.project, user=user, kind="artifact_prune",
                         params={"artifact_id": artifact.pk, "ratio": ratio})
        transaction.on_commit(lambda: _enqueue_default("artifact_prune_run", job.pk))
    return job


def artifact_prune_run(*, job_id: int) -> Artifact | None:
    """Prune the job's artifact into a new Artifact whose meta has ``pruning``: ratio,
    sparsity, and mIoU before/after on the validation images (None when there are none)."""
    from deployments.runtime import TorchPredictor, load_model, write_artifact
    from deployments.runtime import export as runtime_export
    from training.selectors import artifact_local_dir

    job = Job.objects.get(pk=job_id)
    tmp = Path(tempfile.mkdtemp(prefix="tessera-prune-"))
    try:
        source = Artifact.objects.select_related("run", "project").get(pk=job.params["artifact_id"])
        ratio = float(job.params["ratio"])
        job_progress(job_id=job_id, progress=0.1, message=f"Pruning {ratio:.0%} of the weights...")
        model, meta = load_model(artifact_local_dir(artifact=source))
        pruned, info = runtime_export.prune_global_magnitude(model, ratio)
        images, targets = artifact_validation_pairs(artifact=source)
        before = after = None
        if images:
            job_progress(job_id=job_id, progress=0.4, message="Measuring mIoU before and after...")
            before = runtime_export.evaluate_predictor(
                TorchPredictor.from_model(model, meta), images, targets)["miou"]
            after = runtime_export.evaluate_predictor(
                TorchPredictor.from_model(pruned, meta), images, targets)["miou"]
        new_meta = dict(source.meta)
        new_meta["pruning"] = {
            "source_artifact": source.pk, "method": "global L1 magnitude, unstructured",
            "ratio": ratio, "sparsity": info["sparsity"], "pruned_weights": info["pruned_weights"],
            "total_weights": info["total_weights"], "validation_images": len(images),
            "miou_before": before, "miou": after,
            "miou_delta": (after - before) if images else None,
        }
        write_artifact(pruned, new_meta, tmp / "artifact")
        artifact = artifact_create_from_dir(
            project=source.project, directory=tmp / "artifact", meta=new_meta,
            name=f"{source.name} pruned {ratio:.0%}", user=job.created_by)
    except Exception as exc:  # noqa: BLE001
        logger.exception("pruning job %s failed", job_id)
        job_finish(job_id=job_id, errors=[{"message": f"{type(exc).__name__}: {exc}"}],
                   message="Pruning failed.")
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    job_finish(job_id=job_id, message=f"Pruned artifact {artifact.pk} created.",
               result={"artifact_id": artifact.pk, **new_meta["pruning"]})
    return artifact
