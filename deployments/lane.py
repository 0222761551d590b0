"""The predict lane's wire format, shared by its two ends (``deployments.predict`` in the
web process, ``deployments.worker`` in the inference worker).

A prediction travels over Redis, not as a Celery task: the web process stores each
image's raw bytes under a key that expires with the request and pushes a small request
record onto the ``LANE_QUEUE`` list; a lane thread of an inference worker pops it, decodes
the pixels, predicts and pushes the answer onto a reply list the web process waits on
(BRPOP). One round trip each way: a Celery task with its result backend cost ~4-9 ms
more per request (message envelope, task tracing, result store + pub/sub).
The web process checks each image's header only (format, bytes, pixel limits); the
worker decodes every pixel once, so corrupt data comes back as a 400 from there.

A request: ``{"artifact_id", "runtime", "device", "polygons", "png", "company", "inputs"
(the images' keys), "reply" (the reply list), "taken" (the key the worker marks with its
name), "deadline" (epoch seconds)}``. An answer: ``{"ok": True, "results", "inference_ms"}``
or ``{"ok": False, "error": {"code", "message", "status"[, "details"]}}``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from common.conf import setting
from common.errors import ApplicationError
from deployments.registry import redis_client

LANE_QUEUE = "predict-requests"  # the Redis list of prediction requests (under redis_key)


class ServiceUnavailable(ApplicationError):
    def __init__(self, message: str, code: str = "inference_unavailable", **kwargs: Any) -> None:
        super().__init__(message, code=code, status_code=503, **kwargs)


def predict_limits() -> dict[str, int]:
    return {"max_bytes": setting("TESSERA_PREDICT_MAX_IMAGE_BYTES", 20 * 1024 * 1024, int),
            "max_pixels": setting("TESSERA_PREDICT_MAX_IMAGE_PIXELS", 40_000_000, int),
            "max_side": setting("TESSERA_PREDICT_MAX_IMAGE_SIDE", 20_000, int)}


def image_rejected(exc: Any, index: int) -> dict[str, Any]:
    """An UploadRejected as an error payload (400, or 413 for too many bytes or pixels)."""
    too_large = exc.code in ("file_too_large", "too_many_pixels")
    return {"code": exc.code, "status": 413 if too_large else 400,
            "message": f"Image {index}: {exc.message}", "details": {"image": index}}


def lane_error(error: dict[str, Any]) -> ApplicationError:
    return ApplicationError(error["message"], code=error["code"], status_code=error["status"],
                            details=error.get("details"))


def inputs_take(keys: Sequence[str]) -> list[bytes | None]:
    """The images stored under ``keys`` (None where one expired), deleting them."""
    pipe = redis_client().pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
    pipe.delete(*keys)
    return pipe.execute()[:-1]
