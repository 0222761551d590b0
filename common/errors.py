"""One error type for the services and one DRF exception handler that renders every
error as `{"error": {"code", "message", "details"}}` with the right status code."""
from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """A failure the caller can act on. Services raise it; the handler renders it."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid",
        status_code: int = status.HTTP_400_BAD_REQUEST,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status_code = status_code
        self.details = details if details is not None else {}


class NotFoundError(ApplicationError):
    def __init__(self, message: str = "Not found.", **kwargs: Any) -> None:
        super().__init__(message, code="not_found", status_code=404, **kwargs)


class ForbiddenError(ApplicationError):
    def __init__(self, message: str = "You do not have permission for this.", **kwargs: Any):
        super().__init__(message, code="forbidden", status_code=403, **kwargs)


def error_body(code: str, message: str, details: Any = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def is_redis_outage(exc: BaseException) -> bool:
    """Redis (broker, cache, channel layer, results) could not be reached or answered
    with an error: redis-py's errors, and kombu's OperationalError from ``.delay()``."""
    import kombu.exceptions
    import redis.exceptions

    return isinstance(exc, redis.exceptions.RedisError | kombu.exceptions.OperationalError)


def redis_outage_body() -> dict:
    return error_body("service_unavailable", "A backing service (Redis) is unavailable; "
                      "try again shortly.", {"retry_after_s": settings.TESSERA_RETRY_AFTER_S})


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if is_redis_outage(exc):
        logger.error("Redis unavailable: %s", exc)
        return Response(redis_outage_body(), status=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": str(settings.TESSERA_RETRY_AFTER_S)})
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):  # Django's limit on bodies read into memory
        return Response(error_body(
            "request_too_large", f"The request body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} "
            "bytes, the limit for anything but file uploads: send large content (images) as "
            "multipart files."), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return Response(error_body("too_many_fields", str(exc)), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):
        details = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(details)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body("validation_error", "Invalid input.", response.data)
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = error_body(str(code), str(detail))
    return response
