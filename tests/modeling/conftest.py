"""Fixtures for the Django-free training engine: synthetic shapes with exact masks.

Torch runs on one thread: on a shared 2-core machine, two OpenMP threads that compete
with other processes make a step several times slower, not faster.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from projects.synthetic import SYNTHETIC_CLASSES, make_dataset

torch.set_num_threads(1)

RESOLUTION = (64, 64)
NUM_LABELS = len(SYNTHETIC_CLASSES) + 1
CLASSES = [{"name": n, "color": c} for n, c in SYNTHETIC_CLASSES]

Pairs = list[tuple[np.ndarray, np.ndarray]]


def pairs(count: int, seed: int, sizes=((64, 64),)) -> Pairs:
    return [(s.image, s.semantic) for s in make_dataset(count, seed=seed, sizes=sizes)]


@pytest.fixture(scope="session")
def train_pairs() -> Pairs:
    return pairs(160, seed=0)


@pytest.fixture(scope="session")
def val_pairs() -> Pairs:
    """Validation at several image sizes: scoring happens at the original size."""
    return pairs(32, seed=1, sizes=((64, 64), (80, 72), (56, 64), (96, 96)))
