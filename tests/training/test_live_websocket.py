"""The live run stream over a real Channels layer on Redis, fed by a real worker:
points arrive in order, a reconnect with last_step replays exactly the rest, and
strangers are refused."""
import asyncio
import json

import pytest
from channels.testing import WebsocketCommunicator
from rest_framework.authtoken.models import Token

from config.asgi import application
from tests import factories
from tests.training.conftest import TINY_SEGFORMER, WORKER_ENV, labelled_project
from training.models import MetricPoint, TrainingRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]
ORIGIN = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]


@pytest.fixture(scope="module")
def ws_gpu_worker(start_celery_worker):
    return start_celery_worker(queues=("gpu",), name="ws-gpu@tessera", env=WORKER_ENV)


def _token(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


async def _listen(path: str, until_status=("completed", "failed", "cancelled"), timeout=240.0,
                  headers=ORIGIN) -> list[dict]:
    """Connect, collect every message until the run reports a final status (or the
    replay ends, when until_status is None)."""
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    messages: list[dict] = []
    while True:
        try:
            raw = await communicator.receive_from(timeout=timeout if until_status else 2.0)
        except TimeoutError:
            # The communicator has stopped the application on its timeout.
            if until_status is None:
                return messages
            raise
        message = json.loads(raw)
        messages.append(message)
        if (until_status and message["type"] == "training.status"
                and message["payload"]["status"] in until_status):
            await communicator.disconnect()
            return messages


def _steps(messages: list[dict], type: str) -> list[int]:
    return [m["payload"]["step"] for m in messages if m["type"] == type]


def test_live_points_arrive_in_order_and_reconnect_replays_the_rest(ws_gpu_worker, client_for,
                                                                     training_env):
    project = labelled_project(images=12)
    owner = factories.owner_of(project)
    client = client_for(owner)
    config = {**TINY_SEGFORMER, "steps": 24, "log_interval": 1, "eval_interval": 8}
    wf = client.post(f"/api/v1/projects/{project.id}/workflows/", {"name": "ws", "config": config},
                     format="json").json()
    run = client.post("/api/v1/trainings/", {"workflow": wf["id"]}, format="json").json()
    path = f"/ws/trainings/{run['id']}/?token={_token(owner)}"

    live = asyncio.run(_listen(path))

    run_row = TrainingRun.objects.get(pk=run["id"])
    assert run_row.status == "completed", run_row.error
    db_train = list(MetricPoint.objects.filter(run=run_row, kind="train").order_by("step")
                    .values_list("step", flat=True))
    db_eval = list(MetricPoint.objects.filter(run=run_row, kind="eval").order_by("step")
                   .values_list("step", flat=True))
    assert db_train == list(range(1, 25))  # one point per step
    assert _steps(live, "training.metric") == db_train  # all of them, in order, once each
    assert _steps(live, "training.eval") == db_eval and db_eval
    statuses = [m["payload"]["status"] for m in live if m["type"] == "training.status"]
    assert statuses[-1] == "completed" and "running" in statuses

    replay = asyncio.run(_listen(f"{path}&last_step=10", until_status=None))
    assert replay[0]["type"] == "training.status" and replay[0]["payload"]["status"] == "completed"
    assert _steps(replay, "training.metric") == [s for s in db_train if s > 10]
    assert _steps(replay, "training.eval") == [s for s in db_eval if s > 10]
    first = MetricPoint.objects.get(run=run_row, kind="train", step=11)
    assert replay[1]["payload"] == {"id": first.id, "step": 11, "values": first.values}


def test_strangers_anonymous_and_foreign_origins_are_refused(client_for):
    project = labelled_project(images=4)
    owner = factories.owner_of(project)
    wf = client_for(owner).post(f"/api/v1/projects/{project.id}/workflows/",
                                {"name": "x", "config": TINY_SEGFORMER}, format="json").json()
    run = TrainingRun.objects.create(project=project, workflow_id=wf["id"], config=TINY_SEGFORMER)
    stranger = factories.user_create()

    async def attempt(path, headers=ORIGIN):
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, code = await communicator.connect(timeout=10)
        await communicator.disconnect()
        return connected, code

    base = f"/ws/trainings/{run.id}/"
    assert asyncio.run(attempt(f"{base}?token={_token(stranger)}")) == (False, 4403)
    assert asyncio.run(attempt(base)) == (False, 4403)
    foreign = [(b"origin", b"https://evil.example")]
    assert asyncio.run(attempt(f"{base}?token={_token(owner)}", headers=foreign))[0] is False
    assert asyncio.run(attempt(f"{base}?token={_token(owner)}"))[0] is True
