"""Reading trained artifacts (the directory format agreed with training).

Layout of an artifact directory::

    model/          HF ``save_pretrained()`` of the transformers model
    tessera.json    {"format": 1, "family": "segformer"|"mask2former", "variant": str,
                     "classes": [{"index": 0, "name": "background", "color": "#000000"}, ...],
                     "resolution": [H, W], "mean": [r, g, b], "std": [r, g, b], ...}

Reading, writing and the semantic-logits graph are training's (``training.modeling``, also
Django-free), so exports contain exactly the computation that validation measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from training.modeling import artifact as training_artifact
from training.modeling.artifact import ArtifactError
from training.modeling.inference import SemanticLogitsModel, semantic_logits

__all__ = [
    "ArtifactError",
    "ArtifactMeta",
    "SemanticLogitsModel",
    "load_model",
    "read_meta",
    "semantic_logits",
    "write_artifact",
]

FAMILIES = ("segformer", "mask2former")


@dataclass(frozen=True)
class ArtifactMeta:
    """The parts of ``tessera.json`` the runtime needs, validated.

    ``classes`` is ordered by model label: ``classes[0]`` is background, ``classes[i]``
    is model label ``i`` (project ``LabelClass.index == i - 1``).
    """

    family: str
    variant: str
    classes: list[dict[str, Any]]
    resolution: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def num_labels(self) -> int:
        """Number of model outputs K+1 (background included)."""
        return len(self.classes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArtifactMeta:
        """Validate a parsed ``tessera.json``.

        Raises:
            ArtifactError: (a ``ValueError``) naming the first missing or malformed field.
        """
        data = training_artifact.validate_meta(data)
        if data.get("format") != 1:
            raise ArtifactError(f"unsupported artifact format {data.get('format')!r} (expected 1)")
        family = data.get("family")
        if family not in FAMILIES:
            raise ArtifactError(f"unknown model family {family!r}; expected one of {FAMILIES}")
        classes = sorted(data.get("classes") or [], key=lambda c: int(c["index"]))
        if not classes or [int(c["index"]) for c in classes] != list(range(len(classes))):
            raise ArtifactError("classes must be indexed 0..K without gaps (0 = background)")
        resolution = tuple(int(v) for v in data.get("resolution", ()))
        if len(resolution) != 2 or min(resolution) <= 0:
            raise ArtifactError(f"resolution must be [H, W], got {data.get('resolution')!r}")
        mean = tuple(float(v) for v in data.get("mean", ()))
        std = tuple(float(v) for v in data.get("std", ()))
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ArtifactError("mean and std must be three numbers each (std > 0)")
        return cls(
            family=family,
            variant=str(data.get("variant", "")),
            classes=[dict(c) for c in classes],
            resolution=resolution,  # type: ignore[arg-type]
            mean=mean,  # type: ignore[arg-type]
            std=std,  # type: ignore[arg-type]
            raw=dict(data),
        )

    def to_dict(self) -> dict[str, Any]:
        """The validated fields merged over the original document."""
        out = dict(self.raw)
        out.update(
            format=1,
            family=self.family,
            variant=self.variant,
            classes=self.classes,
            resolution=list(self.resolution),
            mean=list(self.mean),
            std=list(self.std),
        )
        return out

    def preprocessing(self) -> dict[str, Any]:
        """The preprocessing settings as plain JSON (for bundles and clients)."""
        return {
            "resolution": list(self.resolution),
            "mean": list(self.mean),
            "std": list(self.std),
            "resize": "bilinear, half-pixel centres, no antialias (align_corners=False)",
            "scale": "pixel / 255",
            "layout": "NCHW float32 RGB",
            "postprocess": "bilinear upsample of logits to the original size, argmax over channels",
        }


def read_meta(path: str | Path) -> ArtifactMeta:
    """Read and validate ``<path>/tessera.json`` (raises ``ArtifactError`` when absent/invalid)."""
    return ArtifactMeta.from_dict(training_artifact.read_meta(path))


def load_model(path: str | Path, device: str = "cpu") -> tuple[torch.nn.Module, ArtifactMeta]:
    """Load an artifact's model (eval mode, float32, on ``device``) and its metadata."""
    model, meta = training_artifact.load_artifact(path, device=device)
    return model, ArtifactMeta.from_dict(meta)


def write_artifact(model: torch.nn.Module, meta: dict[str, Any], path: str | Path) -> Path:
    """Write an artifact directory (model/ + tessera.json) atomically, in training's format."""
    training_artifact.save_artifact(model, meta, path)
    return Path(path)
