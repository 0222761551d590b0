"""Presence in the annotator over the real Channels layer (Redis): each open annotator of an
asset sees the others (people and other tabs), arrivals and departures update the list, other
assets are separate, and non-members are refused."""
import asyncio
import json

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from config.asgi import application
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]


def _path(asset_id: int, user) -> str:
    token = Token.objects.get_or_create(user=user)[0].key
    return f"/ws/assets/{asset_id}/presence/?token={token}"


async def _open(path: str) -> WebsocketCommunicator:
    c = WebsocketCommunicator(application, path, headers=ORIGIN)
    connected, _ = await c.connect(timeout=10)
    assert connected
    return c


async def _others_until(c: WebsocketCommunicator, want: list[str]) -> list[str]:
    """Read presence messages until the list of other users equals ``want``."""
    while True:
        message = json.loads(await c.receive_from(timeout=10))
        assert message["type"] == "presence"
        names = sorted(o["user"] for o in message["others"])
        if names == sorted(want):
            return names


def test_each_annotator_sees_the_others_and_strangers_are_refused():
    project = factories.project_create(alice="annotator", bob="viewer")
    asset = factories.asset_create(project)
    other_asset = factories.asset_create(project)
    users = get_user_model().objects
    alice, bob = users.get(username="alice"), users.get(username="bob")
    stranger = factories.user_create("mallory")
    paths = {
        "alice": _path(asset.id, alice),
        "bob": _path(asset.id, bob),
        "alice-elsewhere": _path(other_asset.id, alice),
        "stranger": _path(asset.id, stranger),
    }

    async def scenario():
        a = await _open(paths["alice"])
        assert await _others_until(a, []) == []
        elsewhere = await _open(paths["alice-elsewhere"])
        await _others_until(elsewhere, [])
        b = await _open(paths["bob"])
        assert await _others_until(b, ["alice"]) == ["alice"]
        assert await _others_until(a, ["bob"]) == ["bob"]
        a2 = await _open(paths["alice"])  # alice in a second tab
        await _others_until(a2, ["alice", "bob"])
        await _others_until(b, ["alice", "alice"])
        await b.disconnect()
        await _others_until(a, ["alice"])
        await _others_until(a2, ["alice"])
        # The annotator of another asset heard none of it.
        assert await elsewhere.receive_nothing(timeout=0.5)
        s = WebsocketCommunicator(application, paths["stranger"], headers=ORIGIN)
        connected, code = await s.connect(timeout=10)
        assert not connected and code == 4403
        for c in (a, a2, elsewhere):
            await c.disconnect()

    asyncio.run(scenario())


def test_an_open_socket_keeps_the_asset_out_of_next_to_label(client_for, settings):
    """While an annotator's socket is open, "Next to label" hands others the next asset; the
    key is refreshed while connected and released on disconnect, where another open socket of
    the asset takes it over. A viewer's socket holds nothing."""
    from asgiref.sync import sync_to_async
    from django.core.cache import cache

    from projects.selectors import asset_open_key

    settings.TESSERA_ASSET_OPEN_TTL_S = 3  # refreshed every second while connected
    project = factories.project_create(alice="annotator", bob="annotator", carol="annotator",
                                       vic="viewer")
    first, second = factories.asset_create(project), factories.asset_create(project)
    users = get_user_model().objects
    alice, bob, carol, vic = (users.get(username=n) for n in ("alice", "bob", "carol", "vic"))
    cache.delete_many([asset_open_key(first.id), asset_open_key(second.id)])
    url = f"/api/v1/projects/{project.id}/assets/next/"
    vic_path, alice_path, bob_path = (_path(first.id, u) for u in (vic, alice, bob))

    @sync_to_async
    def next_for(user) -> int | None:
        res = client_for(user).post(url, {"purpose": "label"}, format="json")
        assert res.status_code == 200, res.content
        asset = res.json()["asset"]
        if asset:  # give it back: only the socket should hold assets here
            cache.delete(asset_open_key(asset["id"]))
        return asset and asset["id"]

    async def scenario():
        viewer = await _open(vic_path)
        await _others_until(viewer, [])
        assert await next_for(bob) == first.id  # a viewer holds nothing
        await viewer.disconnect()
        a = await _open(alice_path)
        await _others_until(a, [])
        assert await next_for(bob) == second.id
        await asyncio.sleep(4)  # past the TTL: the open socket has refreshed it
        assert await next_for(bob) == second.id
        assert await next_for(alice) == first.id  # her own open asset is hers to get
        # Alice in a second tab, then bob on the same asset: one leaving keeps it held.
        a2 = await _open(alice_path)
        await _others_until(a, ["alice"])
        await _others_until(a2, ["alice"])
        await a.disconnect()
        await _others_until(a2, [])
        assert await next_for(bob) == second.id
        b = await _open(bob_path)
        await _others_until(b, ["alice"])
        await a2.disconnect()
        await _others_until(b, [])
        assert await next_for(carol) == second.id  # bob's socket took it over
        await b.disconnect()
        assert await next_for(carol) == first.id

    asyncio.run(scenario())
