"""Logs as JSON lines (``TESSERA_LOG_FORMAT=json``) and a request id that follows a request.

The web takes the id from the ``X-Request-ID`` header (or makes one), answers with it,
and puts it on every log record written while the request runs (``RequestIdMiddleware``);
a prediction carries it over the lane to the inference worker, which logs under it while
it serves that request (``request_id_bound``). Records without a request have ``-``.
"""
from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

REQUEST_ID_HEADER = "X-Request-ID"
_request_id: ContextVar[str] = ContextVar("tessera_request_id", default="-")
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # an id from outside must not forge log lines


def current_request_id() -> str:
    return _request_id.get()


@contextmanager
def request_id_bound(request_id: str | None) -> Iterator[None]:
    """Within the block, log records carry ``request_id`` (a valid one, else a new one)."""
    token = _request_id.set(request_id if request_id and _VALID.match(request_id) else uuid.uuid4().hex)
    try:
        yield
    finally:
        _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (attach it to handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage(),
                 "request_id": getattr(record, "request_id", _request_id.get()),
                 "process": record.process, "thread": record.threadName}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class RequestIdMiddleware:
    """Binds the request id for the whole request and returns it in ``X-Request-ID``."""

    sync_capable, async_capable = True, False

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request):
        with request_id_bound(request.headers.get(REQUEST_ID_HEADER)):
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = current_request_id()
        return response


def celery_logging_connect() -> None:
    """With ``TESSERA_LOG_FORMAT=json``, Celery workers log through Django's LOGGING (JSON,
    with request ids) instead of configuring their own handlers."""
    import os

    if os.environ.get("TESSERA_LOG_FORMAT", "").lower() != "json":
        return
    from celery import signals

    def use_django_logging(**_: object) -> None:
        from logging.config import dictConfig

        from django.conf import settings

        dictConfig(settings.LOGGING)

    signals.setup_logging.connect(use_django_logging, weak=False)
