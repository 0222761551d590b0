"""Fixtures for the Django-free deployment runtime: small real models, real data.

``trained_artifact``: a tiny SegFormer trained for a few seconds on the synthetic shapes
(so quality deltas of exports mean something), written in the artifact format.
``m2f_artifact``: a tiny Mask2Former with random weights (export/runtime plumbing only).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from deployments.runtime.artifact import write_artifact
from projects.synthetic import SYNTHETIC_CLASSES, make_dataset
from training.modeling.registry import IMAGENET_MEAN, IMAGENET_STD, build_model, get_spec

# One thread: on a busy 2-core machine, 2 OpenMP threads per process spin against the
# other processes and run ~10x slower than one.
torch.set_num_threads(1)
os.environ.setdefault("TESSERA_INFERENCE_THREADS", "1")

RESOLUTION = (64, 64)
VAL_SIZES = ((64, 64), (96, 80), (50, 70), (128, 96))


@dataclass
class ValSet:
    images: list[np.ndarray]
    targets: list[np.ndarray]


def artifact_meta(family: str, variant: str = "tiny") -> dict:
    classes = [{"index": 0, "name": "background", "color": "#000000"}]
    classes += [
        {"index": i + 1, "name": n, "color": c} for i, (n, c) in enumerate(SYNTHETIC_CLASSES)
    ]
    return {
        "format": 1,
        "family": family,
        "variant": variant,
        "classes": classes,
        "resolution": list(RESOLUTION),
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "metrics": {},
        "workflow": {},
        "run": {},
    }


def _train_tiny_segformer(steps: int = 120, batch: int = 16) -> torch.nn.Module:
    torch.manual_seed(0)
    spec = get_spec("segformer", "tiny")
    model = build_model(spec, num_labels=len(SYNTHETIC_CLASSES) + 1, pretrained="none")
    data = make_dataset(160, seed=1, sizes=(RESOLUTION,))
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    images = (
        torch.from_numpy(np.stack([s.image for s in data])).permute(0, 3, 1, 2).float() / 255 - mean
    ) / std
    labels = torch.from_numpy(np.stack([s.semantic for s in data])).long()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(data), (batch,), generator=generator)
        loss = model(pixel_values=images[idx], labels=labels[idx]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="session")
def trained_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("artifacts") / "segformer-tiny"
    write_artifact(_train_tiny_segformer(), artifact_meta("segformer"), path)
    return path


@pytest.fixture(scope="session")
def m2f_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = build_model(
        get_spec("mask2former", "tiny"), num_labels=len(SYNTHETIC_CLASSES) + 1, pretrained="none"
    )
    path = tmp_path_factory.mktemp("artifacts") / "m2f-tiny"
    write_artifact(model.eval(), artifact_meta("mask2former"), path)
    return path


@pytest.fixture(scope="session")
def val_set() -> ValSet:
    """Images of several sizes (not the model resolution) with exact semantic targets."""
    samples = make_dataset(24, seed=99, sizes=VAL_SIZES)
    return ValSet([s.image for s in samples], [s.semantic for s in samples])
