"""One call from labelled pairs to a trained artifact (what the training worker runs).

``run_training(job)`` (a ``config.TrainingJob``, validated when it was created) builds the
model (weights policy), trains with ``Trainer`` (resuming when asked), then writes the
artifact from the best checkpoint (or the last one when no best metric is tracked). No
Django here: the caller passes plain arrays and dicts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accelerate.utils import set_seed

from .artifact import ARTIFACT_FORMAT, save_artifact
from .checkpoints import load_checkpoint_weights
from .config import TrainConfig, TrainingJob
from .registry import build_model, get_spec
from .trainer import Trainer, TrainerCallbacks, TrainResult, make_datasets

BACKGROUND = {"index": 0, "name": "background", "color": "#000000"}


@dataclass
class TrainingOutcome:
    """result: the Trainer's; meta: the artifact's tessera.json (None when cancelled)."""

    result: TrainResult
    meta: dict[str, Any] | None
    artifact_dir: Path | None


def artifact_classes(classes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Project classes [{"name", "color", ...}] in label order -> artifact classes with
    index 0 = background and index i + 1 = project class i."""
    out = [dict(BACKGROUND)]
    for i, cls in enumerate(classes):
        entry = {"index": i + 1, "name": str(cls["name"]), "color": str(cls.get("color", "#ffffff"))}
        if "id" in cls:
            entry["class_id"] = cls["id"]
        out.append(entry)
    return out


def summarize_metrics(metrics: dict[str, Any] | None) -> dict[str, Any]:
    """Keep what an artifact listing shows: means plus per-class IoU/F1."""
    if not metrics:
        return {}
    return {
        "miou": metrics.get("miou"),
        "mean_f1": metrics.get("mean_f1"),
        "pixel_accuracy": metrics.get("pixel_accuracy"),
        "per_class": [
            {"index": c["index"], "name": c["name"], "iou": c["iou"], "f1": c["f1"]}
            for c in metrics.get("per_class", [])
        ],
    }


def run_training(job: TrainingJob, *, callbacks: TrainerCallbacks | None = None) -> TrainingOutcome:
    """Train ``job`` (validated by ``TrainingJob.create``); write the artifact.

    Raises registry.WeightsNotFoundError, ModelRegistryError.
    """
    cfg = job.config
    meta_classes = artifact_classes(job.classes)
    names = [c["name"] for c in meta_classes]
    spec = get_spec(cfg.family, cfg.variant)
    set_seed(cfg.seed)
    model = build_model(
        spec,
        len(meta_classes),
        cfg.pretrained,
        job.weights_dir,
        class_names=names,
        allow_download=job.allow_download,
    )
    train_ds, val_ds = make_datasets(cfg, job.train_pairs, job.val_pairs)
    trainer = Trainer(cfg, model, train_ds, val_ds if len(job.val_pairs) else None, job.output_dir,
                      callbacks, names)
    result = trainer.fit(resume_from=job.resume_from)
    if result.status == "cancelled":
        return TrainingOutcome(result, None, None)
    final_model = trainer.accelerator.unwrap_model(trainer.model)
    images = (len(job.train_pairs), len(job.val_pairs))
    meta = None
    if trainer.accelerator.is_main_process:
        meta = _write_artifact(final_model, cfg, result, meta_classes, job.artifact_dir, job.run_info,
                               *images)
    trainer.accelerator.wait_for_everyone()
    if meta is None:  # other ranks: the same description, without writing
        meta = _artifact_meta(cfg, result, meta_classes, job.run_info, *images)
    return TrainingOutcome(result, meta, job.artifact_dir)


def _artifact_meta(cfg: TrainConfig, result: TrainResult, meta_classes: list[dict[str, Any]],
                   run_info: dict[str, Any] | None, train_images: int, val_images: int) -> dict[str, Any]:
    chosen = result.best_checkpoint or result.last_checkpoint
    metrics = result.best_metrics if result.best_checkpoint else result.last_metrics
    return {
        "format": ARTIFACT_FORMAT,
        "family": cfg.family,
        "variant": cfg.variant,
        "classes": meta_classes,
        "resolution": list(cfg.resolution),  # type: ignore[arg-type]
        "mean": list(cfg.mean),
        "std": list(cfg.std),
        "metrics": summarize_metrics(metrics),
        "workflow": cfg.to_dict(),
        "run": {
            **(run_info or {}),
            "status": result.status,
            "steps": result.step,
            "best_step": result.best_step,
            "checkpoint": chosen.name if chosen else None,
            "train_images": train_images,
            "val_images": val_images,
        },
    }


def _write_artifact(model, cfg: TrainConfig, result: TrainResult, meta_classes: list[dict[str, Any]],
                    artifact_dir: str | os.PathLike[str], run_info: dict[str, Any] | None,
                    train_images: int, val_images: int) -> dict[str, Any]:
    """Load the chosen checkpoint (the best, else the last) into ``model`` and save it."""
    chosen = result.best_checkpoint or result.last_checkpoint
    if chosen is not None:
        load_checkpoint_weights(model, chosen)
    meta = _artifact_meta(cfg, result, meta_classes, run_info, train_images, val_images)
    save_artifact(model, meta, artifact_dir)
    return meta


def artifact_from_checkpoints(
    config: TrainConfig,
    result: TrainResult,
    classes: Sequence[dict[str, Any]],
    artifact_dir: str | os.PathLike[str],
    *,
    run_info: dict[str, Any] | None = None,
    train_images: int = 0,
    val_images: int = 0,
) -> dict[str, Any] | None:
    """The artifact of a stopped run (e.g. cancelled) from its best checkpoint, else its
    last one; None when it wrote none. Builds the architecture without pretrained weights
    (the checkpoint overwrites every parameter). Returns the artifact's meta."""
    if (result.best_checkpoint or result.last_checkpoint) is None:
        return None
    cfg = config.resolved()
    meta_classes = artifact_classes(classes)
    model = build_model(get_spec(cfg.family, cfg.variant), len(meta_classes), "none",
                        class_names=[c["name"] for c in meta_classes])
    return _write_artifact(model, cfg, result, meta_classes, artifact_dir, run_info,
                           train_images, val_images)
