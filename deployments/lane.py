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
or, for a failure, the API's error body with its status: ``{"ok": False, "status", "error":
{"code", "message", "details"}}`` (``error_answer`` writes it from an ApplicationError,
``answer_error`` turns it back into one, which the API renders as is).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from common.conf import setting
from common.errors import ApplicationError, error_body
from deployments.registry import redis_client

LANE_QUEUE = "predict-requests"  # the Redis list of prediction requests (under redis_key)


class ServiceUnavailable(ApplicationError):
    def __init__(self, message: str, code: str = "inference_unavailable", **kwargs: Any) -> None:
        super().__init__(message, code=code, status_code=503, **kwargs)


def predict_limits() -> dict[str, int]:
    return {"max_bytes": setting("TESSERA_PREDICT_MAX_IMAGE_BYTES", 20 * 1024 * 1024, int),
            "max_pixels": setting("TESSERA_PREDICT_MAX_IMAGE_PIXELS", 40_000_000, int),
            "max_side": setting("TESSERA_PREDICT_MAX_IMAGE_SIDE", 20_000, int)}


def image_rejected(exc: Any, index: int) -> ApplicationError:
    """An UploadRejected of image ``index`` (400, or 413 for too many bytes or pixels)."""
    too_large = exc.code in ("file_too_large", "too_many_pixels")
    return ApplicationError(f"Image {index}: {exc.message}", code=exc.code,
                            status_code=413 if too_large else 400, details={"image": index})


def error_answer(exc: ApplicationError) -> dict[str, Any]:
    """The lane's answer for a failure: the API's error body and the status."""
    return {"ok": False, "status": exc.status_code, **error_body(exc.code, exc.message, exc.details)}


def answer_error(answer: dict[str, Any]) -> ApplicationError:
    """The ApplicationError of a failed answer (``error_answer``'s inverse); an answer
    without one is the worker's failure (500)."""
    error = answer.get("error") or {}
    status = answer.get("status") or error.get("status") or 500  # (in "error": older workers)
    return ApplicationError(error.get("message") or f"The inference worker failed: {answer!r}",
                            code=error.get("code") or "inference_failed", status_code=status,
                            details=error.get("details"))


def inputs_take(keys: Sequence[str]) -> list[bytes | None]:
    """The images stored under ``keys`` (None where one expired), deleting them."""
    pipe = redis_client().pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
    pipe.delete(*keys)
    return pipe.execute()[:-1]
