"""Live events of a training run, published to the Channels group ``training_run_<id>``.

Message shape (what a consumer receives): ``{"type": "training.<kind>", "run_id": int,
"payload": {...}}`` where kind is ``status`` (status, step, message, error), ``metric``
(a train MetricPoint), ``eval`` (an eval MetricPoint) or ``checkpoint``. Channels maps
``training.metric`` to the consumer method ``training_metric`` and so on.

Events go out only after the surrounding transaction commits, so listeners never see
state that was rolled back.
"""
from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from typing import Any

from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

EVENT_TYPES = ("training.status", "training.metric", "training.eval", "training.checkpoint")


def run_group(run_id: int) -> str:
    """The Channels group of a run's listeners."""
    return f"training_run_{run_id}"


class _Publisher(threading.Thread):
    """Sends events from a background thread with its own event loop, in FIFO order, so a
    training step never waits for Redis and the layer's connections are reused."""

    def __init__(self) -> None:
        super().__init__(name="tessera-event-publisher", daemon=True)
        self.pid = os.getpid()
        self.queue: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()

    def run(self) -> None:
        loop = asyncio.new_event_loop()
        layer = get_channel_layer()
        while True:
            group, message = self.queue.get()
            try:
                loop.run_until_complete(layer.group_send(group, message))
            except Exception:  # noqa: BLE001 - live updates must never break the training
                logger.warning("could not publish %s to %s", message["type"], group, exc_info=True)
            finally:
                self.queue.task_done()

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self.queue.unfinished_tasks


_publisher: _Publisher | None = None
_publisher_lock = threading.Lock()


def _get_publisher() -> _Publisher:
    """One publisher per process (a forked Celery child starts its own)."""
    global _publisher
    with _publisher_lock:
        if _publisher is None or _publisher.pid != os.getpid():
            _publisher = _Publisher()
            _publisher.start()
        return _publisher


def _send(run_id: int, type: str, payload: dict[str, Any]) -> None:
    if get_channel_layer() is None:
        return
    message = {"type": type, "run_id": run_id, "payload": payload}
    _get_publisher().queue.put((run_group(run_id), message))


def flush(timeout: float = 10.0) -> bool:
    """Wait until every event queued so far has been sent (e.g. before a task returns)."""
    return _publisher.flush(timeout) if _publisher is not None else True


def publish_run_event(run_id: int, type: str, payload: dict[str, Any]) -> None:
    """Send ``payload`` to the run's group once the current transaction commits (at
    once when there is none). ``type`` is one of EVENT_TYPES."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown training event type {type!r}")
    transaction.on_commit(lambda: _send(run_id, type, payload))
