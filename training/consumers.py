"""Live stream of one training run: `ws /ws/trainings/<run_id>/?last_step=N`.

On connect the consumer joins the run's group *first*, then replays from the database
every metric point after `last_step` (and the run's current status). Live events that
arrived meanwhile wait in the channel layer and are delivered afterwards; those already
covered by the replay are dropped. So a client that reconnects with the last step it
has gets everything after it exactly once, in order."""
from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from training.events import run_group


def run_event_replay(*, run_id: int, after_step: int) -> list[dict]:
    """Events a (re)connecting client missed: the run's status, then every metric point
    with step > after_step in step order, shaped like the live events."""
    from training.models import MetricPoint, TrainingRun
    from training.services import run_status_payload

    run = TrainingRun.objects.filter(pk=run_id).first()
    if run is None:
        return []
    points = MetricPoint.objects.filter(run_id=run_id, step__gt=after_step).order_by("step", "id")
    events = [{"type": f"training.{'metric' if p.kind == 'train' else 'eval'}",
               "payload": {"id": p.pk, "step": p.step, "values": p.values}} for p in points]
    return [{"type": "training.status", "payload": run_status_payload(run)}, *events]


class TrainingRunConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        user = self.scope.get("user")
        if not await self._may_watch(user):
            await self.close(code=4403)
            return
        # Highest step sent per metric kind; live events at or below it are duplicates.
        self.sent: dict[str, int] = {"train": self._last_step(), "eval": self._last_step()}
        await self.channel_layer.group_add(run_group(self.run_id), self.channel_name)
        await self.accept()
        replay = await database_sync_to_async(run_event_replay)(
            run_id=self.run_id, after_step=self._last_step())
        for event in replay:
            await self._send_event(event["type"], event["payload"])

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "sent"):
            await self.channel_layer.group_discard(run_group(self.run_id), self.channel_name)

    def _last_step(self) -> int:
        from urllib.parse import parse_qs

        query = parse_qs(self.scope.get("query_string", b"").decode())
        try:
            return int(query.get("last_step", ["-1"])[0])
        except ValueError:
            return -1

    @database_sync_to_async
    def _may_watch(self, user) -> bool:
        from common.errors import ApplicationError
        from projects.selectors import object_get_for_user
        from training.models import TrainingRun

        if user is None or not user.is_authenticated:
            return False
        try:
            object_get_for_user(TrainingRun, user=user, pk=self.run_id, label="Training run")
        except ApplicationError:
            return False
        return True

    async def _send_event(self, type: str, payload: dict) -> None:
        kind = {"training.metric": "train", "training.eval": "eval"}.get(type)
        if kind is not None:
            if payload["step"] <= self.sent[kind]:
                return
            self.sent[kind] = payload["step"]
        await self.send_json({"type": type, "payload": payload})

    # Channels calls these for group messages of type training.<kind>.
    async def training_metric(self, event: dict) -> None:
        await self._send_event(event["type"], event["payload"])

    async def training_eval(self, event: dict) -> None:
        await self._send_event(event["type"], event["payload"])

    async def training_status(self, event: dict) -> None:
        await self._send_event(event["type"], event["payload"])

    async def training_checkpoint(self, event: dict) -> None:
        await self._send_event(event["type"], event["payload"])
