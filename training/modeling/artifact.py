"""Trained artifact directories: write once (atomically), read anywhere.

Layout::

    <path>/
      model/         transformers ``save_pretrained()`` (config.json + model.safetensors)
      tessera.json   {"format": 1, "family", "variant", "classes": [{"index", "name",
                      "color"}, ...] (index 0 = background), "resolution": [H, W],
                      "mean": [r, g, b], "std": [r, g, b] (0..1 scale), "metrics",
                      "workflow", "run"}

``save_artifact`` writes into a temporary sibling directory and renames it into place,
so a reader never sees a half-written artifact.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .registry import model_class

ARTIFACT_FORMAT = 1
META_FILE = "tessera.json"
MODEL_DIR = "model"
_REQUIRED = ("family", "variant", "classes", "resolution", "mean", "std")


class ArtifactError(ValueError):
    """The directory is not a valid Tessera artifact (message says why)."""


def validate_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """Check and normalise a tessera.json dict; returns a copy with defaults filled."""
    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise ArtifactError(f"artifact metadata lacks {missing}")
    out = dict(meta)
    out["format"] = int(out.get("format", ARTIFACT_FORMAT))
    if out["format"] != ARTIFACT_FORMAT:
        raise ArtifactError(f"unsupported artifact format {out['format']}")
    if out["family"] not in ("segformer", "mask2former"):
        raise ArtifactError(f"unknown family {out['family']!r}")
    classes = out["classes"]
    if len(classes) < 2 or [c["index"] for c in classes] != list(range(len(classes))):
        raise ArtifactError("classes must be indexed 0..K with 0 = background and K >= 1")
    if len(out["resolution"]) != 2 or len(out["mean"]) != 3 or len(out["std"]) != 3:
        raise ArtifactError("resolution must be [H, W]; mean and std three numbers each")
    out["resolution"] = [int(v) for v in out["resolution"]]
    out["mean"] = [float(v) for v in out["mean"]]
    out["std"] = [float(v) for v in out["std"]]
    for key in ("metrics", "workflow", "run"):
        out.setdefault(key, {})
    return out


def save_artifact(model: nn.Module, meta: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``model`` (a transformers PreTrainedModel, possibly wrapped) and ``meta`` to ``path``.

    Atomic: written to a temp directory next to ``path`` and renamed; an existing
    ``path`` is replaced. The model's config gets ``id2label`` from ``meta["classes"]``.
    """
    meta = validate_meta(meta)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    model = getattr(model, "module", model)  # unwrap DDP
    if len(meta["classes"]) != model.config.num_labels:
        raise ArtifactError(
            f"{len(meta['classes'])} classes in metadata but the model has {model.config.num_labels} labels"
        )
    names = {int(c["index"]): str(c["name"]) for c in meta["classes"]}
    model.config.id2label = names
    model.config.label2id = {n: i for i, n in names.items()}
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(tmp / MODEL_DIR, safe_serialization=True)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            if old.exists():
                shutil.rmtree(old)
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The validated tessera.json of an artifact directory."""
    meta_file = Path(path) / META_FILE
    if not meta_file.is_file():
        raise ArtifactError(f"{path} has no {META_FILE}")
    return validate_meta(json.loads(meta_file.read_text()))


def load_artifact(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """(model in eval mode on ``device``, metadata dict) from an artifact directory."""
    meta = read_meta(path)
    model_dir = Path(path) / MODEL_DIR
    if not (model_dir / "config.json").is_file():
        raise ArtifactError(f"{path} has no {MODEL_DIR}/config.json")
    model = model_class(meta["family"]).from_pretrained(str(model_dir))
    model.to(device)
    model.eval()
    return model, meta
