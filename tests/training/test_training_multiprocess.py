"""A run asking for num_gpus=2, executed by a real Celery gpu worker: torchrun starts two
DDP processes (CPU ranks on gloo here), their callbacks become the same rows, events and
artifact as a one-process run; cancel stops them and leaves no process behind."""
import numpy as np
import pytest

from tests import factories
from tests.conftest import resume_consuming, stop_consuming, wait_until
from tests.modeling.test_distributed_training import job_processes
from tests.training.conftest import WORKER_ENV, labelled_project
from tests.training.test_training_runs_worker import _start, _status
from training.models import Artifact, Checkpoint, TrainingRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture(scope="module")
def two_gpu_worker(start_celery_worker):
    """The only worker taking gpu tasks during this module, offering 2 "GPUs" (CPU ranks)."""
    earlier = stop_consuming("gpu")
    worker = start_celery_worker(queues=("gpu",), name="two-gpu@tessera",
                                 env={**WORKER_ENV, "TESSERA_GPUS_PER_WORKER": "2"})
    yield worker
    resume_consuming("gpu", earlier)


@pytest.fixture
def two_gpus(training_env):
    training_env.TESSERA_GPUS_PER_WORKER = 2  # the API process validates the workflow
    return training_env


def _rank_processes(run_id: int) -> list[int]:
    """torchrun and the ranks of this run (their command lines hold its job folder)."""
    return job_processes(f"/runs/{run_id}-")


def test_two_process_run_completes_with_metrics_and_an_artifact(two_gpu_worker, client_for, two_gpus):
    project = labelled_project(images=16)
    client = client_for(factories.owner_of(project))
    run = _start(client, project, num_gpus=2)
    final = wait_until(lambda: (s := _status(client, run["id"]))["status"] in TrainingRun.FINISHED and s,
                       timeout=300, interval=0.5)
    assert final["status"] == "completed", final["error"]
    assert final["step"] == 30 and final["best_metric"] is not None

    points = client.get(f"/api/v1/trainings/{run['id']}/metrics/").json()
    train = [p for p in points if p["kind"] == "train"]
    evals = [p for p in points if p["kind"] == "eval"]
    assert [p["step"] for p in train] == [5, 10, 15, 20, 25, 30]
    assert all(p["values"]["device"] == "2 x cpu (DDP, gloo)" and p["values"]["processes"] == 2
               for p in train)
    assert [p["step"] for p in evals] == [10, 20, 30]
    assert max(p["values"]["miou"] for p in evals) == pytest.approx(final["best_metric"])
    confusion = np.array(evals[-1]["values"]["confusion"])
    assert confusion.sum() == 4 * 64 * 64  # both ranks' shards, every val pixel once
    assert evals[-1]["values"]["samples"][0]["size"] == [64, 64]

    checkpoints = list(Checkpoint.objects.filter(run_id=run["id"]))
    assert checkpoints and sum(c.is_best for c in checkpoints) == 1
    artifact = Artifact.objects.get(run_id=run["id"])
    assert final["artifact"] == artifact.pk
    assert artifact.meta["run"]["processes"] == 2
    assert artifact.meta["metrics"]["miou"] == pytest.approx(final["best_metric"])
    assert not _rank_processes(run["id"])


def test_cancel_stops_both_processes(two_gpu_worker, client_for, two_gpus):
    project = labelled_project(images=8)
    client = client_for(factories.owner_of(project))
    run = _start(client, project, num_gpus=2, steps=5000, eval_interval=1000, checkpoint_every_n_steps=0)
    wait_until(lambda: _status(client, run["id"])["step"] >= 5, timeout=180, interval=0.5)
    assert len(_rank_processes(run["id"])) == 3  # torchrun + 2 ranks
    assert client.post(f"/api/v1/trainings/{run['id']}/cancel/").status_code == 202
    final = wait_until(lambda: (s := _status(client, run["id"]))["status"] in TrainingRun.FINISHED and s,
                       timeout=60, interval=0.5)
    assert final["status"] == "cancelled", final
    assert final["step"] < 5000 and final["artifact"] is None
    assert not _rank_processes(run["id"])
