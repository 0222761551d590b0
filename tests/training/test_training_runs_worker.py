"""Training runs executed by a real Celery worker process: completion with metrics and
an artifact, cancel, and a killed worker whose run resumes from its checkpoint (recovered
by the periodic task that Celery beat sends)."""
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.files.storage import default_storage
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from projects.models import Asset
from tests import factories
from tests.conftest import ROOT, resume_consuming, stop_consuming, wait_until
from tests.processes import stop_process_groups
from tests.training.conftest import TINY_SEGFORMER, WORKER_ENV, labelled_project
from training.checkpoint_storage import checkpoint_storage_prefix
from training.models import Artifact, Checkpoint, TrainingRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture(scope="module")
def gpu_worker(start_celery_worker):
    return start_celery_worker(queues=("gpu",), name="training-gpu@tessera", env=WORKER_ENV)


def _start(client, project, **overrides) -> dict:
    config = {**TINY_SEGFORMER, **overrides}
    wf = client.post(f"/api/v1/projects/{project.id}/workflows/", {"name": "wf", "config": config},
                     format="json")
    assert wf.status_code == 201, wf.json()
    run = client.post("/api/v1/trainings/", {"workflow": wf.json()["id"]}, format="json")
    assert run.status_code == 201, run.json()
    return run.json()


def _status(client, run_id: int) -> dict:
    return client.get(f"/api/v1/trainings/{run_id}/").json()


def _drain(layer, channel: str) -> list[dict]:
    messages = []

    async def receive_all():
        import asyncio

        while True:
            try:
                messages.append(await asyncio.wait_for(layer.receive(channel), timeout=1.0))
            except TimeoutError:
                return

    async_to_sync(receive_all)()
    return messages


def test_run_completes_with_metrics_checkpoints_events_and_an_artifact(gpu_worker, client_for, training_env):
    project = labelled_project(images=16)
    client = client_for(factories.owner_of(project))
    layer = get_channel_layer()
    run = _start(client, project)
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"training_run_{run['id']}", channel)

    final = wait_until(lambda: (s := _status(client, run["id"]))["status"] in ("completed", "failed") and s,
                       timeout=240)
    assert final["status"] == "completed", final["error"]
    assert final["step"] == 30 and final["best_metric"] is not None
    assert final["dataset"] == {"train": 12, "val": 4}
    assert final["images_per_second"] > 0

    points = client.get(f"/api/v1/trainings/{run['id']}/metrics/").json()
    train = [p for p in points if p["kind"] == "train"]
    evals = [p for p in points if p["kind"] == "eval"]
    assert [p["step"] for p in train] == [5, 10, 15, 20, 25, 30]
    assert all(p["values"]["images_per_second"] > 0 for p in train)
    assert [p["step"] for p in evals] == [10, 20, 30]
    assert max(p["values"]["miou"] for p in evals) == pytest.approx(final["best_metric"])
    assert all(p["values"]["device"] == "cpu" for p in train)
    sample = evals[-1]["values"]["samples"][0]
    assert sample["size"] == [64, 64] and all("counts" in m["rle"] for m in sample["masks"])
    val_ids = set(Asset.objects.filter(project=project, split="val").values_list("id", flat=True))
    assert {s["asset_id"] for s in evals[-1]["values"]["samples"]} <= val_ids
    confusion = np.array(evals[-1]["values"]["confusion"])
    assert confusion.shape == (5, 5) and confusion.sum() == 4 * 64 * 64  # every val pixel once
    assert np.trace(confusion) / confusion.sum() == pytest.approx(evals[-1]["values"]["pixel_accuracy"])
    later = client.get(f"/api/v1/trainings/{run['id']}/metrics/?after={points[2]['id']}").json()
    assert [p["id"] for p in later] == [p["id"] for p in points[3:]]

    checkpoints = list(Checkpoint.objects.filter(run_id=run["id"]))
    assert checkpoints and all(Path(c.path).is_dir() for c in checkpoints)
    assert sum(c.is_best for c in checkpoints) == 1
    # Each kept checkpoint also lives in the storage (complete), and only those.
    run_row = TrainingRun.objects.get(pk=run["id"])
    folders = default_storage.listdir(checkpoint_storage_prefix(run=run_row, name="x").rsplit("x/", 1)[0])[0]
    stored = [f for f in folders  # (a local storage keeps emptied folders; S3 has none)
              if default_storage.exists(checkpoint_storage_prefix(run=run_row, name=f) + "trainer_state.json")]
    assert sorted(stored) == sorted(Path(c.path).name for c in checkpoints)
    for c in checkpoints:
        prefix = checkpoint_storage_prefix(run=run_row, name=Path(c.path).name)
        assert sorted(default_storage.listdir(prefix)[1]) == sorted(p.name for p in Path(c.path).iterdir())

    artifact = Artifact.objects.get(run_id=run["id"])
    assert final["artifact"] == artifact.pk
    body = client.get(f"/api/v1/artifacts/{artifact.pk}/").json()
    assert [c["name"] for c in body["meta"]["classes"]][:2] == ["background", "circle"]
    assert body["meta"]["metrics"]["miou"] == pytest.approx(final["best_metric"])
    listed = client.get(f"/api/v1/artifacts/?project={project.id}").json()["results"]
    assert [a["id"] for a in listed] == [artifact.pk]

    # The stored artifact loads and predicts at the asset's size.
    from training.modeling.artifact import load_artifact
    from training.modeling.inference import predict_class_maps
    from training.selectors import artifact_local_dir

    model, meta = load_artifact(artifact_local_dir(artifact=artifact))
    asset = Asset.objects.filter(project=project).first()
    from PIL import Image

    with asset.file.open("rb") as fh:
        image = np.asarray(Image.open(fh).convert("RGB"))
    [class_map] = predict_class_maps(model, meta, [image])
    assert class_map.shape == (asset.height, asset.width)

    events = _drain(layer, channel)
    types = [m["type"] for m in events]
    assert "training.metric" in types and "training.eval" in types
    statuses = [m["payload"]["status"] for m in events if m["type"] == "training.status"]
    assert statuses[-1] == "completed"


def test_cancel_stops_a_running_training(gpu_worker, client_for, training_env):
    project = labelled_project(images=8)
    client = client_for(factories.owner_of(project))
    run = _start(client, project, steps=5000, eval_interval=1000, checkpoint_every_n_steps=0)
    wait_until(lambda: _status(client, run["id"])["step"] >= 5, timeout=180)
    response = client.post(f"/api/v1/trainings/{run['id']}/cancel/")
    assert response.status_code == 202
    final = wait_until(lambda: (s := _status(client, run["id"]))["status"] in TrainingRun.FINISHED and s,
                       timeout=60)
    assert final["status"] == "cancelled"
    assert final["step"] < 5000 and final["artifact"] is None


def test_cancel_can_keep_the_best_checkpoint_as_an_artifact(gpu_worker, client_for, training_env):
    from training.modeling.artifact import load_artifact
    from training.selectors import artifact_local_dir

    project = labelled_project(images=8)
    client = client_for(factories.owner_of(project))
    run = _start(client, project, steps=5000, eval_interval=10, checkpoint_every_n_steps=0)
    wait_until(lambda: Checkpoint.objects.filter(run_id=run["id"], is_best=True).exists(), timeout=180)
    response = client.post(f"/api/v1/trainings/{run['id']}/cancel/", {"keep_best": True}, format="json")
    assert response.status_code == 202 and response.json()["cancel_keep_best"] is True
    final = wait_until(lambda: (s := _status(client, run["id"]))["status"] in TrainingRun.FINISHED and s,
                       timeout=120)
    assert final["status"] == "cancelled" and final["artifact"] is not None, final
    best = Checkpoint.objects.get(run_id=run["id"], is_best=True)
    artifact = Artifact.objects.get(pk=final["artifact"])
    assert artifact.meta["run"]["status"] == "cancelled"
    assert artifact.meta["run"]["checkpoint"] == Path(best.path).name
    assert artifact.meta["metrics"]["miou"] == pytest.approx(best.metrics["miou"])
    assert f"from the checkpoint of step {best.step}" in final["message"]
    model, meta = load_artifact(artifact_local_dir(artifact=artifact))
    assert meta["family"] == "segformer" and sum(p.numel() for p in model.parameters()) > 0


@pytest.fixture
def only_new_gpu_workers():
    """Workers started earlier in the session stop taking gpu tasks for this test, so the
    run goes to the worker the test is about to kill."""
    earlier = stop_consuming("gpu")
    yield
    resume_consuming("gpu", earlier)


@pytest.fixture
def beat(tmp_path):
    """``celery beat`` (as platform/Procfile starts it) sending the recovery every second."""
    from django.conf import settings

    log = open(settings.VAR_DIR / "beat.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "info",
         "-s", str(tmp_path / "beat-schedule")],
        cwd=ROOT, env={**os.environ, "TESSERA_TRAINING_RECOVER_EVERY_S": "1"}, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True)
    yield proc
    stop_process_groups([proc])
    log.close()


def test_lost_runs_are_recovered_by_the_beat_not_by_reading_them(start_celery_worker, client_for, request):
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    # As a worker that died mid-run leaves a run: running, heartbeat long gone, resumed twice.
    run = {"id": TrainingRun.objects.create(
        project=project, config=TINY_SEGFORMER, total_steps=30, status=TrainingRun.Status.RUNNING,
        heartbeat_at=timezone.now() - timedelta(hours=1), attempts=2, worker="gone@tessera").pk}
    assert _status(client, run["id"])["status"] == "running"  # reading changes nothing
    assert client.get("/api/v1/trainings/").json()["results"][0]["status"] == "running"

    start_celery_worker(queues=("default",), name="recover-default@tessera")
    request.getfixturevalue("beat")
    final = wait_until(lambda: (s := _status(client, run["id"]))["status"] == "failed" and s, timeout=60)
    assert final["error"].startswith("The training was lost: gone@tessera stopped answering")


def test_killed_worker_run_resumes_from_its_checkpoint(start_celery_worker, client_for, training_env,
                                                       only_new_gpu_workers, beat, tmp_path):
    worker = start_celery_worker(queues=("gpu",), name="doomed-gpu@tessera", env=WORKER_ENV)
    project = labelled_project(images=12)
    client = client_for(factories.owner_of(project))
    run = _start(client, project, steps=150, log_interval=5, checkpoint_every_n_steps=10,
                 eval_interval=50)
    wait_until(lambda: Checkpoint.objects.filter(run_id=run["id"], step__gte=20).exists(), timeout=240)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    killed = timezone.now()
    killed_at = TrainingRun.objects.get(pk=run["id"]).step
    saved = max(Checkpoint.objects.filter(run_id=run["id"]).values_list("step", flat=True))

    # The rescuing worker has a disk of its own: the checkpoint comes from the storage. It
    # also takes the default queue, where the beat's recovery task re-queues the run.
    start_celery_worker(queues=("gpu", "default"), name="rescue-gpu@tessera",
                        env={**WORKER_ENV, "TESSERA_TRAINING_DIR": str(tmp_path / "rescue-disk")})
    final = wait_until(lambda: (s := _status(client, run["id"]))["status"] in TrainingRun.FINISHED and s,
                       timeout=400, interval=1.0)
    assert final["status"] == "completed", final
    assert final["attempts"] == 1 and final["step"] == 150
    points = client.get(f"/api/v1/trainings/{run['id']}/metrics/?kind=train").json()
    assert [p["step"] for p in points] == list(range(5, 151, 5))  # no gap, no step logged twice
    assert killed_at >= 20
    # Resumed, not restarted: what was logged up to the checkpoint is from before the kill.
    for point in points:
        before = parse_datetime(point["created_at"]) < killed
        assert before == (point["step"] <= saved), (point, saved)
    assert (tmp_path / "rescue-disk").is_dir()
    assert final["artifact"] is not None
