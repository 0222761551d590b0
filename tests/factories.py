"""Builders for test data. They go through the services, so tests exercise the same
paths as the API."""
from __future__ import annotations

import io
import itertools

import numpy as np
from django.contrib.auth import get_user_model
from PIL import Image

from projects import services
from projects.models import Asset, LabelClass, Membership, Project, Role

_seq = itertools.count()


def user_create(username: str | None = None, password: str = "pw-123456"):
    username = username or f"user{next(_seq)}"
    return get_user_model().objects.create_user(username=username, password=password)


def project_create(owner=None, name: str = "Project", **members: str) -> Project:
    """members: username=role for extra members (users are created)."""
    owner = owner or user_create()
    project = services.project_create(user=owner, name=name)
    for username, role in members.items():
        Membership.objects.create(project=project, user=user_create(username), role=role)
    return project


def png_bytes(width: int = 32, height: int = 24, seed: int = 0, mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1}[mode]
    pixels = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    image = Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def asset_create(project: Project, width: int = 32, height: int = 24, seed: int | None = None,
                 split: str = Asset.Split.TRAIN) -> Asset:
    data = png_bytes(width, height, seed=next(_seq) if seed is None else seed)
    return services.asset_create_from_bytes(project=project, user=None, name=f"img{seed}.png",
                                            data=data, split=split)


def label_class_create(project: Project, name: str | None = None, color: str | None = None) -> LabelClass:
    return services.label_class_create(project=project, name=name or f"class{next(_seq)}", color=color)


def owner_of(project: Project):
    return Membership.objects.get(project=project, role=Role.OWNER).user
