"""Typed views of the API's objects. Each keeps the full JSON in ``raw`` so fields the
server adds later stay reachable."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from tessera import rle

T = TypeVar("T", bound="ApiObject")


@dataclass
class ApiObject:
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls: type[T], data: dict[str, Any]) -> T:
        names = {f.name for f in dataclasses.fields(cls)} - {"raw"}
        return cls(raw=data, **{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return dict(self.raw)


@dataclass
class Project(ApiObject):
    id: int = 0
    name: str = ""
    type: str = "segmentation"
    description: str = ""
    role: str | None = None
    asset_count: int | None = None
    created_at: str | None = None


@dataclass
class LabelClass(ApiObject):
    id: int = 0
    name: str = ""
    color: str = ""
    index: int = 0


@dataclass
class Asset(ApiObject):
    id: int = 0
    project_id: int = 0
    name: str = ""
    width: int = 0
    height: int = 0
    status: str = ""
    split: str = ""
    sha256: str = ""
    video_id: int | None = None
    frame_index: int | None = None
    file_url: str = ""
    created_at: str | None = None


@dataclass
class Mask(ApiObject):
    """One class's mask of an asset, as COCO RLE; ``array()`` decodes it."""

    class_id: int = 0
    rle: dict[str, Any] = field(default_factory=dict)

    def array(self) -> np.ndarray:
        return rle.decode(self.rle)


@dataclass
class MaskSet(ApiObject):
    asset_id: int = 0
    width: int = 0
    height: int = 0
    status: str = ""
    revision: int | None = None
    revision_id: int | None = None
    masks: list[Mask] = field(default_factory=list)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> MaskSet:
        obj = super().from_api(data)
        obj.masks = [Mask.from_api(m) for m in data.get("masks", [])]
        return obj

    def arrays(self) -> dict[int, np.ndarray]:
        """``{class_id: boolean (H, W) mask}``."""
        return {m.class_id: m.array() for m in self.masks}


@dataclass
class Job(ApiObject):
    """A background job: import, export, report."""

    id: int = 0
    project_id: int = 0
    kind: str = ""
    status: str = ""
    progress: float = 0.0
    message: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    errors: list[Any] = field(default_factory=list)
    download_url: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed")


@dataclass
class Workflow(ApiObject):
    id: int = 0
    project: int = 0
    name: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    val_fraction: float = 0.2


@dataclass
class TrainingRun(ApiObject):
    id: int = 0
    project: int = 0
    workflow: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    status: str = ""
    step: int = 0
    total_steps: int = 0
    message: str = ""
    error: str = ""
    cancel_requested: bool = False
    best_metric: float | None = None
    best_step: int | None = None
    artifact: int | None = None
    created_at: str | None = None
    finished_at: str | None = None

    FINISHED = ("completed", "failed", "cancelled")

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED


@dataclass
class TrainingEvent:
    """One live event of a run: ``kind`` is ``status``, ``metric`` (training loss etc.),
    ``eval`` (mIoU etc.) or ``checkpoint``; ``values`` holds metric values."""

    kind: str
    payload: dict[str, Any]

    @property
    def step(self) -> int | None:
        return self.payload.get("step")

    @property
    def values(self) -> dict[str, Any]:
        return self.payload.get("values") or {}

    @property
    def status(self) -> str | None:
        return self.payload.get("status") if self.kind == "status" else None


@dataclass
class MetricPoint(ApiObject):
    id: int = 0
    step: int = 0
    kind: str = ""
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Artifact(ApiObject):
    id: int = 0
    project: int = 0
    run: int | None = None
    name: str = ""
    family: str = ""
    variant: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    size_bytes: int | None = None


@dataclass
class Deployment(ApiObject):
    id: int = 0
    project: int = 0
    artifact: int = 0
    name: str = ""
    runtime: str = ""
    device: str = ""
    replicas: int = 1
    status: str = ""
    reason: str = ""
    predict_url: str = ""


@dataclass
class ApiKey(ApiObject):
    """A deployment's API key; ``key`` (the secret) is set only when just created."""

    id: int = 0
    deployment: int = 0
    name: str = ""
    prefix: str = ""
    rate: str = ""
    revoked: bool = False
    key: str | None = None


@dataclass
class PredictedClass(ApiObject):
    class_id: int | None = None
    label: int = 0
    class_name: str = ""
    rle: dict[str, Any] = field(default_factory=dict)
    area: int = 0

    def array(self) -> np.ndarray:
        return rle.decode(self.rle)


@dataclass
class Prediction(ApiObject):
    """One image's prediction. ``class_map()`` is an ``(H, W)`` array of model labels
    (``LabelClass.index + 1``; 0 is background); ``masks()`` one boolean mask per class."""

    width: int = 0
    height: int = 0
    predictions: list[PredictedClass] = field(default_factory=list)
    timing_ms: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Prediction:
        obj = super().from_api(data)
        obj.predictions = [PredictedClass.from_api(p) for p in data.get("predictions", [])]
        return obj

    def class_map(self) -> np.ndarray:
        dtype = np.uint8 if all(p.label < 256 for p in self.predictions) else np.int32
        return rle.class_map(((p.label, p.array()) for p in self.predictions),
                             (self.height, self.width), dtype=dtype)

    def masks(self) -> dict[str, np.ndarray]:
        """``{class_name: boolean (H, W) mask}`` for the classes present."""
        return {p.class_name: p.array() for p in self.predictions}
