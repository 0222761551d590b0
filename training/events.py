"""Live events of a training run, published to the Channels group ``training_run_<id>``.

Message shape (what a consumer receives): ``{"type": "training.<kind>", "run_id": int,
"payload": {...}}`` where kind is ``status`` (status, step, message, error), ``metric``
(a train MetricPoint), ``eval`` (an eval MetricPoint) or ``checkpoint``. Channels maps
``training.metric`` to the consumer method ``training_metric`` and so on.

Events go out only after the surrounding transaction commits, so listeners never see
state that was rolled back.
"""
from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

EVENT_TYPES = ("training.status", "training.metric", "training.eval", "training.checkpoint")


def run_group(run_id: int) -> str:
    """The Channels group of a run's listeners."""
    return f"training_run_{run_id}"


def _send(run_id: int, type: str, payload: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(run_group(run_id), {"type": type, "run_id": run_id, "payload": payload})
    except Exception:  # noqa: BLE001 - live updates must never break the training itself
        logger.warning("could not publish %s for run %s", type, run_id, exc_info=True)


def publish_run_event(run_id: int, type: str, payload: dict[str, Any]) -> None:
    """Send ``payload`` to the run's group once the current transaction commits (at
    once when there is none). ``type`` is one of EVENT_TYPES."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown training event type {type!r}")
    transaction.on_commit(lambda: _send(run_id, type, payload))
