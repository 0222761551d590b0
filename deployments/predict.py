"""The predict lane, web side: checking the request's images (headers only), queueing
the request for an inference worker and waiting for its answer (the wire format is
``deployments.lane``; the worker side is ``deployments.worker``).

Settings (``common.conf.setting``: Django setting, else environment variable, else default):
  TESSERA_PREDICT_TIMEOUT_S           how long a request waits for the worker (30)
  TESSERA_PREDICT_MAX_IMAGES          images per request (16)
  TESSERA_PREDICT_MAX_IMAGE_BYTES     bytes per image (20 MB)
  TESSERA_PREDICT_MAX_IMAGE_PIXELS    pixels per image (40 M)
  TESSERA_PREDICT_MAX_IMAGE_SIDE      pixels per side (20000)
  TESSERA_PREDICT_RATE                default throttle rate per API key ("600/min")
"""
from __future__ import annotations

import base64
import binascii
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from common.conf import setting
from common.errors import ApplicationError
from common.logs import current_request_id
from deployments.lane import (
    LANE_QUEUE,
    ServiceUnavailable,
    answer_error,
    image_rejected,
    predict_limits,
)
from deployments.models import Deployment
from deployments.registry import inference_workers, redis_client, redis_key


@dataclass
class PredictImage:
    """An accepted input image: its encoded bytes and the size its header declares."""

    data: bytes
    width: int
    height: int


def predict_image_check(*, data: bytes, index: int = 0) -> PredictImage:
    """Header checks of one input image: 400 for data that is not a supported image, 413
    for too many bytes or pixels. Its pixels are decoded (and checked) by the worker."""
    from projects.validation import UploadRejected, inspect_image

    try:
        header = inspect_image(data, **predict_limits())
    except UploadRejected as exc:
        raise image_rejected(exc, index) from None
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
    client = redis_client()
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
    holder = redis_client().get(taken)
    holder = holder.decode() if isinstance(holder, bytes) else holder
    alive = {worker["name"] for worker in inference_workers()}
    if holder is not None and holder not in alive:
        return ("inference_worker_lost", f"The inference worker {holder} stopped sending "
                "heartbeats while it held this request.")
    if holder is None and not alive:
        return ("no_inference_worker", "No inference worker is running any more; the "
                "prediction was not started.")
    return None


def deployment_predict(*, deployment: Deployment, images: Sequence[PredictImage],
                       polygons: bool = False, png: bool = False) -> list[dict[str, Any]]:
    """Run ``images`` through the deployment on an inference worker.

    Returns one payload per image: ``{"width", "height", "predictions": [{"class_id",
    "label", "class_name", "rle", "area"[, "polygons"]}][, "png"], "timing_ms"}``.
    Raises 409 (not ready), 400/413 (an image the worker could not decode), 503 (no
    inference worker, or none answered in time)."""
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
                         "request_id": current_request_id(),
                         "company": _in_flight[deployment.pk] > holders}, images, timeout)
    if not answer.get("ok"):
        raise answer_error(answer)
    total_ms = (time.perf_counter() - start) * 1000.0
    for payload in answer["results"]:
        payload["timing_ms"] = {"total": round(total_ms, 2),
                                "inference": round(answer["inference_ms"], 2)}
    return answer["results"]
