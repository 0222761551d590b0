"""Training loop for SegFormer / Mask2Former semantic segmentation (no Django).

``Trainer`` drives a transformers model with ``accelerate.Accelerator``: one process on
CPU or one GPU here; ``accelerate launch`` / torchrun start several processes for DDP and
the same code shards the data per process (``DistributedSampler`` semantics) while the
accelerator synchronises gradients.

Step = one optimizer update on ``batch_size`` images per process. ``fit()`` loops
``train_step`` until ``config.steps``; every ``eval_interval`` steps it runs ``evaluate``
(confusion matrix over the validation set at original mask size, plus class maps of a
fixed set of validation images) and every ``checkpoint_every_n_steps`` steps it writes a
checkpoint::

    <output_dir>/config.json                       resolved TrainConfig
    <output_dir>/checkpoints/step-000200/
        model.safetensors                           the model's state dict (its own names)
        optimizer.pt  scheduler.pt  scaler.pt?      state dicts
        rng-<rank>.pt                               python / numpy / torch / cuda RNG states
        trainer_state.json                          step, best metric, evaluation history
        config.json                                 resolved TrainConfig

``fit(resume_from=...)`` restores all of that and continues at the next step with the
same data order and augmentations as an uninterrupted run (writing, loading and pruning
checkpoints is ``checkpoints``; the config and its validation are ``config``: a Trainer
takes a valid one).

Callbacks (main process only): ``on_log(step, values)``, ``on_eval(step, metrics,
sample_predictions)``, ``on_checkpoint(step, path, metrics)``; ``should_stop()`` is asked
before every step (a cancel takes effect within one step).

(About 500 lines: the loop with its optimizer/scheduler set-up, the distributed evaluation
and the resumable data order read best together.)
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, Subset
from transformers import get_scheduler

from .checkpoints import (
    CHECKPOINTS_DIR,
    TrainerState,
    checkpoint_name,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    write_config,
)
from .config import TrainConfig
from .data import (
    AugmentConfig,
    SegmentationEvalDataset,
    SegmentationTrainDataset,
    collate_eval,
)
from .inference import class_map_and_loss, logits_to_class_map, semantic_logits
from .metrics import IGNORE_INDEX, ConfusionMatrix

logger = logging.getLogger(__name__)


class TrainerCallbacks:
    """Hooks called by the Trainer on the main process. Override what you need."""

    def on_log(self, step: int, values: dict[str, float]) -> None:
        """values: loss, lr, images_per_second, epoch, elapsed_s."""

    def on_eval(self, step: int, metrics: dict[str, Any], sample_predictions: list[dict[str, Any]]) -> None:
        """metrics: see metrics.metrics_from_confusion; sample_predictions: [{"index": val
        index, "class_map": uint8 (H0, W0)}] for the fixed sample images."""

    def on_checkpoint(self, step: int, path: Path, metrics: dict[str, Any] | None) -> None:
        """A checkpoint was written to ``path`` (metrics of the evaluation at that step, if any)."""

    def should_stop(self) -> bool:
        """Return True to stop before the next step (cancel)."""
        return False


@dataclass
class TrainResult:
    """Outcome of ``Trainer.fit``. status: completed | cancelled | early_stopped."""

    status: str
    step: int
    best_metric: float | None
    best_step: int | None
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    last_metrics: dict[str, Any] | None
    best_metrics: dict[str, Any] | None


class _EpochBatchSampler(Sampler[list[int]]):
    """Batches of ``sampler`` for one epoch, skipping the first ``skip`` batches."""

    def __init__(self, sampler: Sampler[int], batch_size: int, drop_last: bool, skip: int) -> None:
        self.sampler, self.batch_size, self.drop_last, self.skip = sampler, batch_size, drop_last, skip

    def _batches(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __iter__(self) -> Iterator[list[int]]:
        for number, batch in enumerate(self._batches()):
            if number >= self.skip:
                yield batch

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        full = n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
        return max(0, full - self.skip)


def resolve_mixed_precision(value: str) -> str:
    """'auto' -> 'bf16' on CUDA with bf16 support, 'fp16' on other CUDA, 'no' on CPU."""
    if value != "auto":
        return value
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


def mask2former_targets(labels: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(N, H, W) semantic labels -> per image ((n_i, H, W) float binary masks, (n_i,) class ids).

    One target per class present in the image (background included, as label 0).
    Ignored pixels are 0 in every mask (Mask2Former's loss has no ignore label).
    """
    mask_labels, class_labels = [], []
    for item in labels:
        classes = torch.unique(item)
        classes = classes[classes != ignore_index]
        mask_labels.append((item[None] == classes[:, None, None]).float())
        class_labels.append(classes.long())
    return mask_labels, class_labels


class Trainer:
    """Trains ``model`` on ``train_dataset``, evaluating on ``val_dataset``.

    model:         a SegformerForSemanticSegmentation / Mask2FormerForUniversalSegmentation
                   with ``num_labels`` = len(class_names).
    train_dataset: SegmentationTrainDataset (items: pixel_values, labels at resolution).
    val_dataset:   SegmentationEvalDataset (labels at original size) or None.
    output_dir:    where config.json and checkpoints/ go.
    """

    def __init__(
        self,
        config: TrainConfig,
        model: nn.Module,
        train_dataset: SegmentationTrainDataset,
        val_dataset: SegmentationEvalDataset | None,
        output_dir: str | Path,
        callbacks: TrainerCallbacks | None = None,
        class_names: Sequence[str] | None = None,
        accelerator: Accelerator | None = None,
    ) -> None:
        self.config = config.resolved()
        self.callbacks = callbacks or TrainerCallbacks()
        self.output_dir = Path(output_dir)
        self.num_labels = int(model.config.num_labels)
        self.class_names = list(class_names) if class_names else None
        self.accelerator = accelerator or Accelerator(
            mixed_precision=resolve_mixed_precision(self.config.mixed_precision)
        )
        acc = self.accelerator
        if self.config.num_gpus != acc.num_processes and acc.num_processes > 1:
            logger.warning("config asks for %d GPUs, running %d processes", self.config.num_gpus, acc.num_processes)
        self.train_dataset = train_dataset
        self.val_dataset = val_dataset
        self.sampler = DistributedSampler(
            train_dataset,
            num_replicas=acc.num_processes,
            rank=acc.process_index,
            shuffle=True,
            seed=self.config.seed,
            drop_last=False,
        )
        self.drop_last = len(self.sampler) >= self.config.batch_size
        per_epoch = len(self.sampler) // self.config.batch_size if self.drop_last else 1
        self.batches_per_epoch = max(1, per_epoch)

        self.optimizer = self._build_optimizer(model)
        self.scheduler = self._build_scheduler(self.optimizer)
        self.model, self.optimizer = acc.prepare(model, self.optimizer)
        self.state = TrainerState()
        self._sample_indices = list(range(min(self.config.num_sample_predictions, len(val_dataset or []))))

    # ----------------------------------------------------------------- construction
    def _build_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        cfg = self.config
        decay, no_decay = [], []
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            (no_decay if param.ndim <= 1 or name.endswith(".bias") else decay).append(param)
        groups = [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
        return torch.optim.AdamW(groups, lr=cfg.lr)

    def _build_scheduler(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        cfg = self.config
        name = {"constant": "constant_with_warmup", "poly": "polynomial"}.get(cfg.schedule, cfg.schedule)
        extra = {"power": 0.9, "lr_end": 0.0} if cfg.schedule == "poly" else None
        return get_scheduler(
            name,
            optimizer,
            num_warmup_steps=cfg.warmup_steps,
            num_training_steps=cfg.steps,
            scheduler_specific_kwargs=extra,
        )

    # ----------------------------------------------------------------- steps
    def _loss(self, pixel_values: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.config.family == "mask2former":
            mask_labels, class_labels = mask2former_targets(labels)
            outputs = self.model(pixel_values=pixel_values, mask_labels=mask_labels, class_labels=class_labels)
        else:
            outputs = self.model(pixel_values=pixel_values, labels=labels)
        return outputs.loss

    def train_step(self, batch: dict[str, torch.Tensor]) -> float:
        """One optimizer update on ``batch`` ({"pixel_values", "labels"}); returns the loss."""
        self.model.train()
        device = self.accelerator.device
        pixel_values = batch["pixel_values"].to(device, non_blocking=True)
        labels = batch["labels"].to(device, non_blocking=True)
        loss = self._loss(pixel_values, labels)
        self.accelerator.backward(loss)
        if self.config.max_grad_norm and self.accelerator.sync_gradients:
            self.accelerator.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    @torch.no_grad()
    def evaluate(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Metrics over the whole validation set (all processes) and the sample class maps.

        Each process scores its share of the images; the confusion matrices are summed.
        """
        if self.val_dataset is None or len(self.val_dataset) == 0:
            return {}, []
        acc = self.accelerator
        model = acc.unwrap_model(self.model)
        was_training = model.training
        model.eval()
        if acc.num_processes > 1:
            # DDP copies buffers (BatchNorm statistics) from rank 0 at each forward, then each
            # rank updates its own copy with its batch: score every shard with rank 0's, the
            # ones that checkpoints and the artifact keep.
            for buffer in model.buffers():
                torch.distributed.broadcast(buffer.data, src=0)
        shard = list(range(acc.process_index, len(self.val_dataset), acc.num_processes))
        loader = DataLoader(
            Subset(self.val_dataset, shard),
            batch_size=self.config.eval_batch_size or self.config.batch_size,
            shuffle=False,
            collate_fn=collate_eval,
        )
        confusion = ConfusionMatrix(self.num_labels)
        samples: dict[int, np.ndarray] = {}
        wanted = set(self._sample_indices)
        probabilities = self.config.family == "mask2former"
        loss_sum, loss_pixels = 0.0, 0
        with acc.autocast():
            for batch in loader:
                logits = semantic_logits(model, batch["pixel_values"].to(acc.device)).float()
                for item_logits, labels, index in zip(logits, batch["labels"], batch["index"], strict=True):
                    class_map, item_loss, item_pixels = class_map_and_loss(
                        item_logits, labels, probabilities=probabilities, ignore_index=IGNORE_INDEX)
                    loss_sum, loss_pixels = loss_sum + item_loss, loss_pixels + item_pixels
                    confusion.update(class_map, labels.numpy())
                    if index in wanted:
                        samples[index] = class_map
        matrix = torch.from_numpy(confusion.matrix).to(acc.device)
        loss_total = torch.tensor([loss_sum, float(loss_pixels)], dtype=torch.float64, device=acc.device)
        if acc.num_processes > 1:
            matrix = acc.reduce(matrix, reduction="sum")
            loss_total = acc.reduce(loss_total, reduction="sum")
        metrics = ConfusionMatrix(self.num_labels)
        metrics.merge(matrix.cpu().numpy())
        result = metrics.compute(self.class_names)
        # Mean pixel cross-entropy on the validation set, comparable with the training loss
        # (for Mask2Former, of its semantic scores: its training loss is a different sum).
        if loss_total[1] > 0:
            result["val_loss"] = float(loss_total[0] / loss_total[1])
        sample_predictions: list[dict[str, Any]] = []
        if acc.is_main_process:
            for index in self._sample_indices:
                if index not in samples:  # evaluated by another process
                    item = self.val_dataset[index]
                    with acc.autocast():
                        logits = semantic_logits(model, item["pixel_values"][None].to(acc.device)).float()
                    samples[index] = logits_to_class_map(logits[0], item["labels"].shape)
                sample_predictions.append({"index": index, "class_map": samples[index]})
        model.train(was_training)
        return result, sample_predictions

    # ----------------------------------------------------------------- checkpoints
    @property
    def checkpoints_dir(self) -> Path:
        return self.output_dir / CHECKPOINTS_DIR

    def save_checkpoint(self) -> Path:
        """Write a checkpoint for the current step (atomically) and prune old ones."""
        return save_checkpoint(
            self.checkpoints_dir, accelerator=self.accelerator, model=self.model,
            optimizer=self.optimizer, scheduler=self.scheduler, state=self.state,
            config=self.config.to_dict(), keep_last_k=self.config.keep_last_k)

    def latest_checkpoint(self) -> Path | None:
        """The highest-step complete checkpoint under output_dir, if any."""
        return latest_checkpoint(self.output_dir)

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore model, optimizer, scheduler, scaler, RNG and trainer state from ``path``."""
        self.state = load_checkpoint(
            path, accelerator=self.accelerator, model=self.model, optimizer=self.optimizer,
            scheduler=self.scheduler, checkpoints_dir=self.checkpoints_dir)

    # ----------------------------------------------------------------- loop
    def _should_stop(self) -> bool:
        flag = torch.tensor(
            [1 if (self.accelerator.is_main_process and self.callbacks.should_stop()) else 0],
            device=self.accelerator.device,
        )
        if self.accelerator.num_processes > 1:
            flag = self.accelerator.reduce(flag, reduction="sum")
        return bool(flag.item())

    def _epoch_loader(self, epoch: int, skip: int) -> DataLoader:
        self.sampler.set_epoch(epoch)
        self.train_dataset.set_epoch(epoch)
        batches = _EpochBatchSampler(self.sampler, self.config.batch_size, self.drop_last, skip)
        # A private generator: creating the loader's iterator would otherwise draw from the
        # global torch RNG, so a resumed run would see different dropout than the original.
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        return DataLoader(
            self.train_dataset,
            batch_sampler=batches,
            num_workers=self.config.num_workers,
            pin_memory=self.accelerator.device.type == "cuda",
            generator=generator,
        )

    def _on_eval(self) -> bool:
        """Evaluate, track the best; returns True when early stopping triggers."""
        acc = self.accelerator
        metrics, samples = self.evaluate()
        self.state.last_metrics = metrics
        if acc.is_main_process:
            self.callbacks.on_eval(self.state.step, metrics, samples)
        key = self.config.keep_best_metric
        if not key or metrics.get(key) is None:
            return False
        value = float(metrics[key])
        if self.state.best_metric is None or value > self.state.best_metric:
            self.state.best_metric, self.state.best_step = value, self.state.step
            self.state.best_metrics = metrics
            self.state.evals_without_improvement = 0
            self.state.best_checkpoint = checkpoint_name(self.state.step)
            path = self.save_checkpoint()
            if acc.is_main_process:
                self.callbacks.on_checkpoint(self.state.step, path, metrics)
            return False
        self.state.evals_without_improvement += 1
        patience = self.config.early_stopping_patience
        return bool(patience and self.state.evals_without_improvement >= patience)

    def fit(self, resume_from: str | Path | None = None) -> TrainResult:
        """Train to ``config.steps`` (or until cancelled / early-stopped).

        resume_from: a checkpoint directory, "latest" (the newest under output_dir; a
        fresh start when there is none), or None for a fresh start.
        """
        acc = self.accelerator
        cfg = self.config
        if acc.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            write_config(self.output_dir, self.config.to_dict())
        if resume_from == "latest":
            resume_from = self.latest_checkpoint()
        if resume_from:
            self.load_checkpoint(resume_from)
            logger.info("resumed from %s at step %d", resume_from, self.state.step)
        else:
            set_seed(cfg.seed)

        status = "completed"
        world_batch = cfg.batch_size * acc.num_processes
        window_loss, window_steps, window_time = 0.0, 0, 0.0
        started = time.perf_counter()
        last_saved_step = self.state.step if resume_from else -1
        while self.state.step < cfg.steps and status == "completed":
            epoch, offset = divmod(self.state.step, self.batches_per_epoch)
            # Throughput counts data loading and the step, not evaluation/checkpoints/logging.
            tick = time.perf_counter()
            for batch in self._epoch_loader(epoch, offset):
                if self._should_stop():
                    status = "cancelled"
                    break
                loss = self.train_step(batch)
                window_time += time.perf_counter() - tick
                window_loss += loss
                window_steps += 1
                self.state.step += 1
                step = self.state.step
                if step % cfg.log_interval == 0 or step == cfg.steps:
                    mean_loss = torch.tensor([window_loss / window_steps], device=acc.device)
                    if acc.num_processes > 1:
                        mean_loss = acc.reduce(mean_loss, reduction="mean")
                    values = {
                        "loss": float(mean_loss.item()),
                        "lr": float(self.scheduler.get_last_lr()[0]),
                        "images_per_second": window_steps * world_batch / max(window_time, 1e-9),
                        "epoch": step / self.batches_per_epoch,
                        "elapsed_s": time.perf_counter() - started,
                    }
                    if acc.is_main_process:
                        self.callbacks.on_log(step, values)
                    window_loss, window_steps, window_time = 0.0, 0, 0.0
                stop_early = False
                if step % cfg.eval_interval == 0 or step == cfg.steps:
                    stop_early = self._on_eval()
                    if self.state.best_step == step:
                        last_saved_step = step
                if cfg.checkpoint_every_n_steps and step % cfg.checkpoint_every_n_steps == 0 and last_saved_step != step:
                    path = self.save_checkpoint()
                    last_saved_step = step
                    if acc.is_main_process:
                        self.callbacks.on_checkpoint(step, path, None)
                if stop_early:
                    status = "early_stopped"
                    break
                if step >= cfg.steps:
                    break
                tick = time.perf_counter()
        if status != "cancelled" and last_saved_step != self.state.step:
            path = self.save_checkpoint()
            if acc.is_main_process:
                self.callbacks.on_checkpoint(self.state.step, path, self.state.last_metrics)
        best = self.state.best_checkpoint
        last = self.state.checkpoints[-1] if self.state.checkpoints else None
        return TrainResult(
            status=status,
            step=self.state.step,
            best_metric=self.state.best_metric,
            best_step=self.state.best_step,
            best_checkpoint=self.checkpoints_dir / best if best else None,
            last_checkpoint=self.checkpoints_dir / last if last else None,
            last_metrics=self.state.last_metrics,
            best_metrics=self.state.best_metrics,
        )


def make_datasets(
    config: TrainConfig,
    train_pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    val_pairs: Sequence[tuple[np.ndarray, np.ndarray]],
) -> tuple[SegmentationTrainDataset, SegmentationEvalDataset]:
    """Build the train/val datasets of ``config`` from (image, mask) pairs."""
    cfg = config.resolved()
    resolution = tuple(cfg.resolution)  # type: ignore[arg-type]
    train = SegmentationTrainDataset(
        [p[0] for p in train_pairs],
        [p[1] for p in train_pairs],
        resolution,  # type: ignore[arg-type]
        augment=AugmentConfig.from_dict(cfg.augmentations),
        mean=cfg.mean,
        std=cfg.std,
        seed=cfg.seed,
    )
    val = SegmentationEvalDataset(
        [p[0] for p in val_pairs], [p[1] for p in val_pairs], resolution, mean=cfg.mean, std=cfg.std  # type: ignore[arg-type]
    )
    return train, val


__all__ = [
    "Dataset",
    "TrainResult",
    "Trainer",
    "TrainerCallbacks",
    "make_datasets",
    "mask2former_targets",
    "resolve_mixed_precision",
]
