"""Fixtures for the deployments app: a tiny SegFormer trained once by the training
pipeline, artifacts of it stored per test, and real worker processes.

The inference worker runs the thread pool (`-P threads`), as in production, so that
concurrent predict tasks share one process's hot models and batching queues."""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from deployments import exports
from deployments.models import Deployment
from projects.models import LabelClass, Project
from projects.synthetic import SYNTHETIC_CLASSES, make_dataset
from tests.training.conftest import TINY_SEGFORMER, labelled_project
from training.models import Artifact

torch.set_num_threads(1)

WORKER_ENV = {"TESSERA_TORCH_THREADS": "1", "TESSERA_INFERENCE_THREADS": "1",
              "TESSERA_INFERENCE_MAX_WAIT_MS": "20", "TESSERA_INFERENCE_HEARTBEAT_S": "0.5",
              "TESSERA_INFERENCE_HEARTBEAT_TTL_S": "3", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SegFormer trained by ``training.modeling.pipeline.run_training`` (artifact dir)."""
    from training.modeling.config import TrainConfig, TrainingJob
    from training.modeling.pipeline import run_training

    samples = make_dataset(48, seed=3, sizes=[(64, 64)])
    pairs = [(s.image, s.semantic.astype(np.uint8)) for s in samples]
    config = TrainConfig.from_dict({**TINY_SEGFORMER, "steps": 80, "eval_interval": 40,
                                    "checkpoint_every_n_steps": 40, "lr": 4e-3})
    root = tmp_path_factory.mktemp("deploy-train")
    classes = [{"name": n, "color": c} for n, c in SYNTHETIC_CLASSES]
    outcome = run_training(TrainingJob.create(config, pairs[:40], pairs[40:], classes, root / "run",
                                              root / "artifact"))
    assert outcome.artifact_dir is not None
    return outcome.artifact_dir


def store_artifact(model_dir: Path, project: Project) -> Artifact:
    """Store a copy of the trained artifact for ``project``, its classes mapped to the
    project's LabelClass ids (as training does)."""
    meta = json.loads((model_dir / "tessera.json").read_text())
    by_name = {c.name: c.id for c in LabelClass.objects.filter(project=project)}
    for entry in meta["classes"][1:]:
        if entry["name"] in by_name:
            entry["class_id"] = by_name[entry["name"]]
    staging = Path(tempfile.mkdtemp(prefix="deploy-test-artifact-"))
    try:
        shutil.copytree(model_dir / "model", staging / "model")
        (staging / "tessera.json").write_text(json.dumps(meta))
        return exports.artifact_create_from_dir(project=project, directory=staging, meta=meta,
                                                 name="tiny segformer")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@pytest.fixture
def project_with_artifact(trained_model_dir) -> tuple[Project, Artifact]:
    """A labelled project (8 synthetic images, every 4th in val) and its artifact."""
    project = labelled_project(images=8)
    return project, store_artifact(trained_model_dir, project)


def ready_deployment(artifact: Artifact, runtime: str = "pytorch") -> Deployment:
    """A deployment row marked ready without a worker (for input checks that stop before
    any work is sent)."""
    return Deployment.objects.create(project_id=artifact.project_id, artifact=artifact, name="d",
                                     runtime=runtime, status=Deployment.Status.READY)


@pytest.fixture(scope="session")
def start_worker(start_celery_worker) -> Callable[..., subprocess.Popen]:
    """start_worker(name, queues, env=None) -> a `celery worker -P threads` process on the
    test database, as the platform runs its inference workers."""

    def start(name: str, queues: tuple[str, ...] = ("inference", "default"),
              env: dict[str, str] | None = None, concurrency: int = 4) -> subprocess.Popen:
        return start_celery_worker(queues=queues, name=name, env={**WORKER_ENV, **(env or {})},
                                   concurrency=concurrency, pool="threads")

    return start


@pytest.fixture(scope="session")
def inference_worker(start_worker) -> subprocess.Popen:
    """One worker for the inference and default queues (threads pool). Workers started
    earlier in the session (the shared one serves every queue) stop taking inference
    tasks, so deployments load on this one."""
    from deployments.registry import inference_workers
    from tests.conftest import stop_consuming, wait_until

    stop_consuming("inference")
    proc = start_worker("deploy-inference@tessera")
    wait_until(lambda: any(w["name"] == "deploy-inference@tessera" for w in inference_workers()),
               timeout=30)
    return proc
