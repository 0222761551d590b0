"""What defines a training run and whether it can run (no Django, no model code).

``TrainConfig`` is a workflow's settings (JSON round-trips via to_dict/from_dict);
``validate_config`` lists every reason one cannot run. ``TrainingJob`` is one training to
run: the config with its data, classes and folders; ``TrainingJob.create`` is the
boundary where the config and the data are validated, once (``pipeline.run_training``,
``distributed.run_training_distributed`` and the ``Trainer`` take them as valid).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data import AugmentConfig
from .registry import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    NO_PRETRAINED,
    ModelRegistryError,
    get_spec,
    is_artifact_dir,
)

SCHEDULES = ("constant", "linear", "cosine", "poly")
OPTIMIZERS = ("adamw", "sgd")
MIXED_PRECISION = ("auto", "no", "fp16", "bf16")
BEST_METRICS = ("miou", "mean_f1", "pixel_accuracy")


class TrainConfigError(ValueError):
    """A training configuration that cannot run; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class TrainConfig:
    """Everything that defines a training run (JSON round-trips via to_dict/from_dict).

    resolution:               (H, W) training/inference input size; None = the spec's default.
    batch_size:               images per process per step.
    steps:                    optimizer steps in total.
    schedule:                 constant | linear | cosine | poly (power 0.9), after
                              ``warmup_steps`` of linear warm-up.
    checkpoint_every_n_steps: 0 = only the best and the final checkpoint.
    keep_best_metric:         metric that picks the best checkpoint (higher is better);
                              None = no best tracking.
    keep_last_k:              most recent checkpoints kept (the best one is always kept).
    early_stopping_patience:  stop after this many evaluations without improvement of
                              ``keep_best_metric``; 0 = never.
    num_gpus:                 processes to train with; > 1 = ``distributed.run_training_distributed``
                              (torchrun + DDP). Informational inside the Trainer.
    mixed_precision:          auto = bf16 (or fp16) on CUDA, none on CPU.
    pretrained:               see ``registry.build_model``.
    """

    family: str = "segformer"
    variant: str = "tiny"
    resolution: tuple[int, int] | None = None
    batch_size: int = 8
    steps: int = 1000
    lr: float = 6e-5
    schedule: str = "poly"
    warmup_steps: int = 0
    optimizer: str = "adamw"
    weight_decay: float = 0.01
    momentum: float = 0.9
    max_grad_norm: float | None = 1.0
    augmentations: dict[str, Any] = field(default_factory=lambda: AugmentConfig().to_dict())
    eval_interval: int = 100
    log_interval: int = 10
    checkpoint_every_n_steps: int = 0
    keep_best_metric: str | None = "miou"
    keep_last_k: int = 2
    early_stopping_patience: int = 0
    num_gpus: int = 1
    seed: int = 0
    mixed_precision: str = "auto"
    pretrained: str | None = None
    num_workers: int = 0
    eval_batch_size: int | None = None
    num_sample_predictions: int = 4
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def resolved(self) -> TrainConfig:
        """A copy with defaults filled in (resolution, pretrained) and tuples normalised."""
        spec = get_spec(self.family, self.variant)
        data = self.to_dict()
        data["resolution"] = list(self.resolution or spec.default_resolution)
        if data["pretrained"] is None:
            data["pretrained"] = spec.default_pretrained
        data["augmentations"] = AugmentConfig.from_dict(self.augmentations).to_dict()
        return TrainConfig.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("resolution", "mean", "std"):
            if data[key] is not None:
                data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise TrainConfigError([f"unknown training settings {sorted(unknown)}"])
        values = dict(data)
        for key in ("resolution", "mean", "std"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)


def validate_config(config: TrainConfig) -> list[str]:
    """Every reason why ``config`` cannot run (empty list = valid). Pure, no I/O except
    checking that an artifact directory named in ``pretrained`` exists."""
    problems: list[str] = []
    try:
        spec = get_spec(config.family, config.variant)
    except ModelRegistryError as exc:
        return [str(exc)]
    if config.resolution is not None:
        res = tuple(int(v) for v in config.resolution)
        if res not in spec.allowed_resolutions:
            allowed = ", ".join(f"{h}x{w}" for h, w in spec.allowed_resolutions)
            problems.append(
                f"resolution {res[0]}x{res[1]} is not allowed for {spec.family}/{spec.variant}; "
                f"allowed: {allowed}"
            )
    pretrained = config.pretrained
    if pretrained not in (None, NO_PRETRAINED) and pretrained not in spec.pretrained:
        if "/" in str(pretrained) or "\\" in str(pretrained):
            if not is_artifact_dir(pretrained):
                problems.append(f"pretrained artifact {pretrained!r} does not exist")
        else:
            problems.append(
                f"{spec.family}/{spec.variant} has no pretrained source {pretrained!r}; "
                f"choose one of {spec.pretrained_sources()}"
            )
    if config.batch_size < 1:
        problems.append("batch_size must be >= 1")
    if config.steps < 1:
        problems.append("steps must be >= 1")
    if not (config.lr > 0 and math.isfinite(config.lr)):
        problems.append("lr must be a positive number")
    if config.schedule not in SCHEDULES:
        problems.append(f"schedule must be one of {list(SCHEDULES)}")
    if config.warmup_steps < 0 or config.warmup_steps >= max(config.steps, 1):
        problems.append("warmup_steps must be >= 0 and smaller than steps")
    if config.optimizer not in OPTIMIZERS:
        problems.append(f"optimizer must be one of {list(OPTIMIZERS)}")
    if config.weight_decay < 0:
        problems.append("weight_decay must be >= 0")
    if config.max_grad_norm is not None and config.max_grad_norm <= 0:
        problems.append("max_grad_norm must be positive or null")
    if config.eval_interval < 1 or config.log_interval < 1:
        problems.append("eval_interval and log_interval must be >= 1")
    if config.checkpoint_every_n_steps < 0 or config.keep_last_k < 0:
        problems.append("checkpoint_every_n_steps and keep_last_k must be >= 0")
    if config.keep_best_metric is not None and config.keep_best_metric not in BEST_METRICS:
        problems.append(f"keep_best_metric must be one of {list(BEST_METRICS)} or null")
    if config.early_stopping_patience < 0:
        problems.append("early_stopping_patience must be >= 0")
    if config.early_stopping_patience and config.keep_best_metric is None:
        problems.append("early stopping needs keep_best_metric")
    if config.num_gpus < 1:
        problems.append("num_gpus must be >= 1")
    if config.mixed_precision not in MIXED_PRECISION:
        problems.append(f"mixed_precision must be one of {list(MIXED_PRECISION)}")
    try:
        AugmentConfig.from_dict(config.augmentations)
    except (TypeError, ValueError) as exc:
        problems.append(str(exc))
    return problems


def estimate_memory_gb(config: TrainConfig) -> float:
    """Rough GPU memory need per process: the spec's figure scaled by batch and pixel count."""
    spec = get_spec(config.family, config.variant)
    res = config.resolution or spec.default_resolution
    area = (res[0] * res[1]) / (spec.default_resolution[0] * spec.default_resolution[1])
    return round(spec.memory_gb * (0.35 + 0.65 * area * config.batch_size / 8), 2)


@dataclass(frozen=True)
class TrainingJob:
    """One training to run: what ``pipeline.run_training`` and
    ``distributed.run_training_distributed`` take (and ``distributed.write_job`` writes
    for the ranks). Build it with :meth:`create`, which validates it.

    config:         the resolved TrainConfig.
    train_pairs:    (image uint8 (H, W, 3), mask uint8 (H, W)) pairs; masks use
                    0 = background, i + 1 = classes[i], 255 = ignore. ``val_pairs`` alike.
    classes:        the project's classes in label order ({"name", "color"}, optional "id").
    output_dir:     config.json and checkpoints/ go here; ``artifact_dir``: the artifact.
    weights_dir:    where pretrained weights are looked up (see ``registry.build_model``).
    resume_from:    a checkpoint directory or "latest" (see ``Trainer.fit``).
    allow_download: see ``registry.build_model``.
    run_info:       what the artifact's meta records of the run that made it.
    """

    config: TrainConfig
    train_pairs: Sequence[tuple[np.ndarray, np.ndarray]]
    val_pairs: Sequence[tuple[np.ndarray, np.ndarray]]
    classes: Sequence[dict[str, Any]]
    output_dir: Path
    artifact_dir: Path
    weights_dir: Path | None = None
    resume_from: Path | str | None = None
    allow_download: bool | None = None
    run_info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        config: TrainConfig,
        train_pairs: Sequence[tuple[np.ndarray, np.ndarray]],
        val_pairs: Sequence[tuple[np.ndarray, np.ndarray]],
        classes: Sequence[dict[str, Any]],
        output_dir: str | os.PathLike[str],
        artifact_dir: str | os.PathLike[str],
        *,
        weights_dir: str | os.PathLike[str] | None = None,
        resume_from: str | os.PathLike[str] | None = None,
        allow_download: bool | None = None,
        run_info: dict[str, Any] | None = None,
    ) -> TrainingJob:
        """The job, validated: raises TrainConfigError with every reason it cannot run."""
        problems = validate_config(config)
        if not train_pairs:
            problems.append("no labelled training images")
        if not classes:
            problems.append("the project has no label classes")
        if problems:
            raise TrainConfigError(problems)
        return cls(
            config=config.resolved(),
            train_pairs=train_pairs,
            val_pairs=val_pairs,
            classes=classes,
            output_dir=Path(output_dir),
            artifact_dir=Path(artifact_dir),
            weights_dir=Path(weights_dir) if weights_dir is not None else None,
            resume_from=(resume_from if resume_from in (None, "latest") else Path(resume_from)),
            allow_download=allow_download,
            run_info=dict(run_info or {}),
        )
