"""training.events: events reach the run's group only after the transaction commits."""
import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

from training.events import publish_run_event, run_group

pytestmark = pytest.mark.django_db(transaction=True)


def _listener(group: str):
    """A fresh layer instance and channel in ``group`` (each is used from one event loop)."""
    layer = type(get_channel_layer())(**settings.CHANNEL_LAYERS["default"]["CONFIG"])
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)
    return layer, channel


def _drain(layer, channel, timeout=1.0) -> list[dict]:
    async def receive_all():
        messages = []
        while True:
            try:
                messages.append(await asyncio.wait_for(layer.receive(channel), timeout=timeout))
            except TimeoutError:
                return messages

    return async_to_sync(receive_all)()


def test_published_after_commit_and_not_after_rollback():
    group = run_group(41)
    layer, channel = _listener(group)

    with pytest.raises(RuntimeError):
        with transaction.atomic():
            publish_run_event(41, "training.status", {"status": "running"})
            raise RuntimeError("rolled back")

    early_layer, early_channel = _listener(group)
    with transaction.atomic():
        publish_run_event(41, "training.metric", {"step": 3, "values": {"loss": 0.5}})
        assert _drain(early_layer, early_channel, timeout=0.3) == []  # nothing before the commit

    assert _drain(layer, channel) == [
        {"type": "training.metric", "run_id": 41, "payload": {"step": 3, "values": {"loss": 0.5}}}
    ]
    with pytest.raises(ValueError):
        publish_run_event(41, "training.bogus", {})
