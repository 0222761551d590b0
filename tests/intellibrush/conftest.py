"""Fixtures for the Django-free IntelliBrush model tests: small SAMs with random weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from annotator.intellibrush.sam import SamEngine, build_sam


@pytest.fixture(autouse=True, scope="session")
def _few_threads() -> None:
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_engine() -> SamEngine:
    return SamEngine(build_sam("tiny"), "tiny")


@pytest.fixture(scope="session")
def vit_b_model():
    """The real ViT-B SAM architecture (94 M parameters, random weights); builds in ~1 s."""
    return build_sam("vit_b")


@pytest.fixture(scope="session")
def odd_image() -> np.ndarray:
    """A (97, 143, 3) uint8 image with structure (not square, not a multiple of 16)."""
    from projects.synthetic import make_sample

    return make_sample(3, width=143, height=97).image
