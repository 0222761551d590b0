"""Who else has an asset open in the annotator: `ws /ws/assets/<asset_id>/presence/`.

Every connection joins the asset's group and says hello; the others answer it directly,
so each connection knows the rest without any stored state. A closing connection says
goodbye. The client gets `{"type": "presence", "others": [{"id", "user"}, ...]}` (one
entry per other open annotator: another person, or the same person in another tab)
whenever that list changes. Project members only (viewers included); others are closed
with 4403.

The socket of an owner or annotator also marks the asset open by them (the Redis key that
"Next to label / review" skips, see ``projects.services.asset_open_mark``): set on connect,
refreshed every third of TESSERA_ASSET_OPEN_TTL_S while connected, released on disconnect
(and taken again at once by another open socket of the asset, which hears the goodbye).
A socket that dies without a goodbye leaves the key to expire with its TTL."""
from __future__ import annotations

import asyncio
import contextlib

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer


def presence_group(asset_id: int) -> str:
    return f"asset-presence-{asset_id}"


class AssetPresenceConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.asset_id = int(self.scope["url_route"]["kwargs"]["asset_id"])
        user = self.scope.get("user")
        access = await self._access(user)
        if access is None:
            await self.close(code=4403)
            return
        self.user = user
        if access == "edit":
            await self._open_mark()
            self.keeper = asyncio.ensure_future(self._keep_open())
        self.user_name = user.username
        self.others: dict[str, str] = {}
        self.group = presence_group(self.asset_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self._send_list()
        await self.channel_layer.group_send(self.group, {
            "type": "presence.hello", "channel": self.channel_name, "user": self.user_name})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "keeper"):
            self.keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.keeper
            await self._open_release()
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
        if hasattr(self, "keeper"):
            # The leaver released the open-by key (theirs, or ours from another tab): take it now.
            await self._open_mark()
        if self.others.pop(event["channel"], None) is not None:
            await self._send_list()

    async def _send_list(self) -> None:
        others = [{"id": channel.rsplit("!", 1)[-1], "user": name}
                  for channel, name in sorted(self.others.items())]
        await self.send_json({"type": "presence", "others": others})

    async def _keep_open(self) -> None:
        from django.conf import settings

        while True:
            await asyncio.sleep(max(1.0, settings.TESSERA_ASSET_OPEN_TTL_S / 3))
            await self._open_mark()

    @database_sync_to_async
    def _open_mark(self) -> None:
        from projects.models import Asset
        from projects.services import asset_open_mark

        # False when someone else holds it: keep trying, it is ours once they leave.
        asset_open_mark(asset=Asset(pk=self.asset_id), user=self.user)

    @database_sync_to_async
    def _open_release(self) -> None:
        from projects.models import Asset
        from projects.services import asset_open_release

        asset_open_release(asset=Asset(pk=self.asset_id), user=self.user)

    @database_sync_to_async
    def _access(self, user) -> str | None:
        """"edit" (owner, annotator), "view" (viewer) or None (not a member, no such asset)."""
        from common.errors import ApplicationError
        from projects.models import Role
        from projects.selectors import asset_get_for_user

        if user is None or not user.is_authenticated:
            return None
        for access, role in (("edit", Role.ANNOTATOR), ("view", Role.VIEWER)):
            try:
                asset_get_for_user(user=user, asset_id=self.asset_id, min_role=role)
            except ApplicationError:
                continue
            return access
        return None
