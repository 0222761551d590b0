"""Who else has an asset open in the annotator: `ws /ws/assets/<asset_id>/presence/`.

Every connection joins the asset's group and says hello; the others answer it directly,
so each connection knows the rest without any stored state. A closing connection says
goodbye. The client gets `{"type": "presence", "others": [{"id", "user"}, ...]}` (one
entry per other open annotator: another person, or the same person in another tab)
whenever that list changes. Project members only (viewers included); others are closed
with 4403."""
from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer


def presence_group(asset_id: int) -> str:
    return f"asset-presence-{asset_id}"


class AssetPresenceConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.asset_id = int(self.scope["url_route"]["kwargs"]["asset_id"])
        user = self.scope.get("user")
        if not await self._may_open(user):
            await self.close(code=4403)
            return
        self.user_name = user.username
        self.others: dict[str, str] = {}
        self.group = presence_group(self.asset_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self._send_list()
        await self.channel_layer.group_send(self.group, {
            "type": "presence.hello", "channel": self.channel_name, "user": self.user_name})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await self.channel_layer.group_send(self.group, {
                "type": "presence.bye", "channel": self.channel_name})

    async def receive_json(self, content, **kwargs) -> None:
        """Clients only listen; anything they send is ignored."""

    async def presence_hello(self, event: dict) -> None:
        if event["channel"] == self.channel_name:
            return
        self.others[event["channel"]] = event["user"]
        await self.channel_layer.send(event["channel"], {
            "type": "presence.here", "channel": self.channel_name, "user": self.user_name})
        await self._send_list()

    async def presence_here(self, event: dict) -> None:
        self.others[event["channel"]] = event["user"]
        await self._send_list()

    async def presence_bye(self, event: dict) -> None:
        if self.others.pop(event["channel"], None) is not None:
            await self._send_list()

    async def _send_list(self) -> None:
        others = [{"id": channel.rsplit("!", 1)[-1], "user": name}
                  for channel, name in sorted(self.others.items())]
        await self.send_json({"type": "presence", "others": others})

    @database_sync_to_async
    def _may_open(self, user) -> bool:
        from common.errors import ApplicationError
        from projects.selectors import asset_get_for_user

        if user is None or not user.is_authenticated:
            return False
        try:
            asset_get_for_user(user=user, asset_id=self.asset_id)
        except ApplicationError:
            return False
        return True
