"""Fixtures for the training app: a project labelled with synthetic shapes."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from annotator.services import mask_set_replace_from_arrays
from projects import services as project_services
from projects.models import Asset, Project
from projects.synthetic import SYNTHETIC_CLASSES, make_dataset
from tests import factories

TINY_SEGFORMER = {
    "family": "segformer", "variant": "tiny", "resolution": [64, 64], "batch_size": 8,
    "steps": 30, "lr": 3e-3, "schedule": "constant", "warmup_steps": 2, "eval_interval": 10,
    "log_interval": 5, "checkpoint_every_n_steps": 10, "keep_last_k": 2, "pretrained": "none",
    "augmentations": {"hflip": True},
}

# The worker trains on one torch thread (a shared 2-core machine) and notices a lost
# peer within seconds.
WORKER_ENV = {"TESSERA_TORCH_THREADS": "1", "TESSERA_TRAINING_HEARTBEAT_S": "0.5",
              "TESSERA_TRAINING_HEARTBEAT_TIMEOUT_S": "4"}


def _png(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return out.getvalue()


def labelled_project(images: int = 16, size: int = 64, seed: int = 0, val_every: int = 4) -> Project:
    """A project with the synthetic classes and ``images`` labelled assets (every
    ``val_every``-th one in the val split)."""
    project = factories.project_create()
    classes = [project_services.label_class_create(project=project, name=n, color=c)
               for n, c in SYNTHETIC_CLASSES]
    for i, sample in enumerate(make_dataset(images, seed=seed, sizes=[(size, size)])):
        split = Asset.Split.VAL if val_every and i % val_every == val_every - 1 else Asset.Split.TRAIN
        asset = project_services.asset_create_from_bytes(
            project=project, user=None, name=f"s{i}.png", data=_png(sample.image), split=split)
        mask_set_replace_from_arrays(
            asset=asset, user=None,
            instances=[(classes[inst.class_index], inst.mask) for inst in sample.instances])
    return project


@pytest.fixture
def training_env(settings, monkeypatch):
    """Short heartbeat timeout in the test process too (it runs the recovery check)."""
    for key, value in WORKER_ENV.items():
        monkeypatch.setenv(key, value)
    return settings
