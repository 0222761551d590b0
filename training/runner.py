"""The GPU worker's side of a training run: claiming it, the heartbeat thread (which
also notices a cancel), collecting its data once, turning the trainer's callbacks into
MetricPoint/Checkpoint rows and live events (``training.events``), and executing it
(``training_run_execute``, called by the Celery task). Nothing here runs in the web process.

The model code lives in ``training.modeling`` (no Django); this module hands it plain
arrays.

Settings (read with defaults; environment variables of the same name):
  TESSERA_TRAINING_DIR                 worker disk for run folders and checkpoints
                                       (default <TESSERA_VAR_DIR>/training); each
                                       checkpoint is also copied to the default storage,
                                       from where another worker resumes a lost run
  TESSERA_TRAINING_HEARTBEAT_S         heartbeat period of a running worker (5)
  TESSERA_TORCH_THREADS                torch CPU threads in the worker, and per process
                                       of a multi-process run (unset = torch default;
                                       cores / processes for a multi-process run)
  TESSERA_WEIGHTS_DIR                  where pretrained weights are looked up
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from common.conf import setting
from common.errors import ApplicationError
from projects.models import Asset
from projects.selectors import asset_pixels
from training import events
from training.checkpoint_storage import (
    checkpoint_storage_delete,
    checkpoint_upload,
    checkpoints_fetch,
)
from training.events import publish_run_event
from training.modeling.checkpoints import STATE_FILE, checkpoint_step
from training.models import Artifact, Checkpoint, MetricPoint, TrainingRun
from training.services import artifact_store, heartbeat_timeout_s, training_run_status_set

logger = logging.getLogger(__name__)
Status = TrainingRun.Status


def training_dir() -> Path:
    return Path(setting("TESSERA_TRAINING_DIR", str(Path(settings.VAR_DIR) / "training")))


def run_dir(run: TrainingRun) -> Path:
    return training_dir() / "runs" / f"{run.pk}-{run.key.hex}"


def _claim(run_id: int, worker: str) -> TrainingRun | None:
    """Take the run for this worker: a queued run, or an active one whose heartbeat is
    stale (the message was redelivered after a crash). None when someone else has it."""
    cutoff = timezone.now() - timedelta(seconds=heartbeat_timeout_s())
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status in TrainingRun.FINISHED:
            return None
        if run.status != Status.QUEUED and run.heartbeat_at and run.heartbeat_at >= cutoff:
            return None
        if run.cancel_requested:
            training_run_status_set(run=run, status=Status.CANCELLED, message="Cancelled before it started.")
            return None
        training_run_status_set(run=run, status=Status.PREPARING, worker=worker, heartbeat_at=timezone.now(),
                                started_at=run.started_at or timezone.now(), message="Loading the labelled images.")
    return run


class _Heartbeat(threading.Thread):
    """Refreshes heartbeat_at every period and polls the cancel flag every second,
    independent of how long a training step takes."""

    def __init__(self, run_id: int, period_s: float) -> None:
        super().__init__(name=f"heartbeat-{run_id}", daemon=True)
        self.run_id, self.period_s = run_id, period_s
        self.cancel = threading.Event()
        self.done = threading.Event()

    def run(self) -> None:
        last_beat = 0.0
        try:
            while not self.done.is_set():
                now = time.monotonic()
                if now - last_beat >= self.period_s:
                    TrainingRun.objects.filter(pk=self.run_id).update(heartbeat_at=timezone.now())
                    last_beat = now
                if TrainingRun.objects.filter(pk=self.run_id, cancel_requested=True).exists():
                    self.cancel.set()
                self.done.wait(min(1.0, self.period_s))
        except Exception:  # noqa: BLE001 - a lost heartbeat shows as a stale run
            logger.exception("heartbeat of run %s stopped", self.run_id)
        finally:
            connection.close()


@dataclass
class _Data:
    train: list[tuple[np.ndarray, np.ndarray]]
    val: list[tuple[np.ndarray, np.ndarray]]
    classes: list[dict[str, Any]]
    ids: dict[str, list[int]]
    val_asset_ids: list[int]  # asset id of each val pair, in order


def _collect_data(run: TrainingRun) -> _Data:
    """Decode the run's images and masks once. The asset ids are fixed on the first
    preparation so that a resumed run trains on the same data."""
    from annotator.selectors import class_labels, mask_semantic_map, trainable_classes
    from training.modeling.data import split_indices

    project = run.project
    # the ignore class is no model class: its pixels are 255 in the masks (left out)
    classes = [{"id": c.id, "name": c.name, "color": c.color}
               for c in trainable_classes(project=project)]
    labels = class_labels(project=project)
    ids = run.dataset.get("ids") if run.dataset else None
    if not ids:
        labeled = Asset.objects.filter(project=project, mask_set__isnull=False).order_by("id")
        train_ids = list(labeled.filter(split=Asset.Split.TRAIN).values_list("id", flat=True))
        val_ids = list(labeled.filter(split=Asset.Split.VAL).values_list("id", flat=True))
        if not val_ids and len(train_ids) >= 2:
            keep, held = split_indices(len(train_ids), run.val_fraction, seed=run.config.get("seed", 0))
            train_ids, val_ids = [train_ids[i] for i in keep], [train_ids[i] for i in held]
        ids = {"train": train_ids, "val": val_ids}
    assets = {a.id: a for a in Asset.objects.filter(id__in=ids["train"] + ids["val"]).select_related("project")}

    kept: dict[str, list[int]] = {"train": [], "val": []}  # ids of the pairs, in order

    def pairs(split: str) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for pk in ids[split]:
            asset = assets.get(pk)
            if asset is None:
                continue  # deleted since the run started
            semantic = mask_semantic_map(asset=asset, labels=labels)
            if semantic is None:
                continue
            out.append((asset_pixels(asset=asset), semantic.astype(np.uint8)))
            kept[split].append(pk)
        return out

    data = _Data(pairs("train"), pairs("val"), classes, ids, kept["val"])
    if not data.train:
        raise ApplicationError("No labelled training images are left.", code="no_training_data")
    return data


class _RunCallbacks:
    """Trainer callbacks -> rows, heartbeats and events."""

    def __init__(self, run: TrainingRun, heartbeat: _Heartbeat, val_asset_ids: list[int],
                 device: str) -> None:
        self.run, self.heartbeat = run, heartbeat
        self.val_asset_ids, self.device = val_asset_ids, device

    def on_log(self, step: int, values: dict[str, float]) -> None:
        values = {**values, "device": self.device}
        point = MetricPoint.objects.create(run=self.run, step=step, kind=MetricPoint.Kind.TRAIN, values=values)
        TrainingRun.objects.filter(pk=self.run.pk).update(
            step=step, images_per_second=values.get("images_per_second"),
            message=f"Training: step {step} of {self.run.total_steps}.")
        publish_run_event(self.run.pk, "training.metric", {"id": point.pk, "step": step, "values": values})

    def on_eval(self, step: int, metrics: dict[str, Any], sample_predictions: list[dict[str, Any]]) -> None:
        samples = [{**_sample_summary(s), "asset_id": self.val_asset_ids[s["index"]]}
                   for s in sample_predictions]
        values = {**metrics, "samples": samples}
        point = MetricPoint.objects.create(run=self.run, step=step, kind=MetricPoint.Kind.EVAL, values=values)
        publish_run_event(self.run.pk, "training.eval", {"id": point.pk, "step": step, "values": values})

    def on_checkpoint(self, step: int, path: Path, metrics: dict[str, Any] | None) -> None:
        checkpoint_upload(run=self.run, path=path)
        Checkpoint.objects.update_or_create(run=self.run, step=step,
                                            defaults={"path": str(path), "metrics": _summary(metrics),
                                                      "is_best": False})
        # The trainer keeps the last K and the best on disk (under this worker's run folder,
        # whatever disk wrote the older ones): forget and delete the others, mark the best.
        best = json.loads((path / STATE_FILE).read_text()).get("best_checkpoint")
        kept = {d.name for d in path.parent.glob("step-*") if d.is_dir()}
        for ckpt in Checkpoint.objects.filter(run=self.run):
            if Path(ckpt.path).name not in kept:
                checkpoint_storage_delete(run=self.run, name=Path(ckpt.path).name)
                ckpt.delete()
        Checkpoint.objects.filter(run=self.run).update(is_best=False)
        if best:
            Checkpoint.objects.filter(run=self.run, step=checkpoint_step(best)).update(is_best=True)
        publish_run_event(self.run.pk, "training.checkpoint", {"step": step, "best": best == path.name})

    def should_stop(self) -> bool:
        return self.heartbeat.cancel.is_set()



def _summary(metrics: dict[str, Any] | None) -> dict[str, Any]:
    from training.modeling.pipeline import summarize_metrics

    return summarize_metrics(metrics)


def _sample_summary(sample: dict[str, Any]) -> dict[str, Any]:
    """A validation sample prediction: one COCO RLE per predicted label (0 = background
    is left out): {"index", "size": [H, W], "masks": [{"label", "rle"}]}."""
    from annotator.formats import rle as rlelib

    class_map = sample["class_map"]
    masks = [{"label": int(label), "rle": rlelib.encode(class_map == label)}
             for label in np.unique(class_map) if label != 0]
    return {"index": int(sample["index"]), "size": list(class_map.shape), "masks": masks}


def training_run_execute(*, run_id: int, worker: str | None = None) -> None:
    """Run (or resume) a training in this process. Called by the Celery task."""
    worker = worker or f"{socket.gethostname()}:{os.getpid()}"
    run = _claim(run_id, worker)
    if run is None:
        return
    threads = setting("TESSERA_TORCH_THREADS", None, int)
    if threads:
        import torch

        torch.set_num_threads(threads)
    heartbeat = _Heartbeat(run.pk, setting("TESSERA_TRAINING_HEARTBEAT_S", 5.0, float))
    heartbeat.start()
    try:
        _execute(run, heartbeat)
    except Exception as exc:
        logger.exception("training run %s failed", run.pk)
        close_old_connections()
        run.refresh_from_db()
        training_run_status_set(run=run, status=Status.FAILED, error=_failure_reason(exc)[:5000], message="Failed.")
    finally:
        heartbeat.done.set()
        heartbeat.join(timeout=10)
        events.flush()  # the final status reaches listeners before the task returns


def _failure_reason(exc: Exception) -> str:
    from training.modeling.config import TrainConfigError
    from training.modeling.distributed import DistributedTrainingError
    from training.modeling.registry import ModelRegistryError, WeightsNotFoundError

    if isinstance(exc, WeightsNotFoundError | ModelRegistryError | TrainConfigError | ApplicationError
                  | DistributedTrainingError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _device_name(processes: int = 1) -> str:
    """What the Trainer will run on (accelerate takes CUDA when present), for the page."""
    import torch

    if processes > 1:
        if torch.cuda.is_available():
            return f"{processes} x cuda ({torch.cuda.get_device_name(0)}) (DDP, nccl)"
        return f"{processes} x cpu (DDP, gloo)"
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return "cpu"


def _execute(run: TrainingRun, heartbeat: _Heartbeat) -> None:
    from training.modeling.config import TrainConfig, TrainingJob
    from training.modeling.pipeline import run_training

    data = _collect_data(run)
    directory = run_dir(run)
    resume = checkpoints_fetch(run=run, directory=directory)
    resumed_step = checkpoint_step(resume.name) if resume else 0
    with transaction.atomic():
        # Points logged after the checkpoint are trained again: drop the old ones.
        MetricPoint.objects.filter(run=run, step__gt=resumed_step).delete()
        Checkpoint.objects.filter(run=run, step__gt=resumed_step).delete()
        message = (f"Resumed at step {resumed_step}." if resume else "Training started.")
        training_run_status_set(run=run, status=Status.RUNNING, step=resumed_step, message=message,
                                dataset={"ids": data.ids, "train": len(data.train), "val": len(data.val)})

    processes = int(run.config.get("num_gpus") or 1)
    job = TrainingJob.create(
        TrainConfig.from_dict(run.config), data.train, data.val, data.classes, directory,
        directory / "artifact", weights_dir=setting("TESSERA_WEIGHTS_DIR", None),
        resume_from=resume, run_info=_run_info(run))
    callbacks = _RunCallbacks(run, heartbeat, data.val_asset_ids, _device_name(processes))
    if processes > 1:
        # torchrun starts the processes; their callbacks come back here, in this thread.
        from training.modeling.distributed import run_training_distributed

        outcome = run_training_distributed(job, num_processes=processes, callbacks=callbacks,
                                           threads_per_process=setting("TESSERA_TORCH_THREADS", None, int))
    else:
        outcome = run_training(job, callbacks=callbacks)
    result = outcome.result
    run.refresh_from_db()
    if result.status == "cancelled":
        _cancelled(run, result, data, directory)
        return
    with transaction.atomic():
        artifact = _store_run_artifact(run, outcome.artifact_dir, outcome.meta)
        stopped = " (early stop)" if result.status == "early_stopped" else ""
        training_run_status_set(run=run, status=Status.COMPLETED, step=result.step, best_metric=result.best_metric,
                                best_step=result.best_step,
                                message=f"Completed{stopped}: artifact {artifact.pk} at step {result.step}.")


def _run_info(run: TrainingRun) -> dict[str, Any]:
    """What an artifact's meta records of the run that made it."""
    return {"run_id": run.pk, "project_id": run.project_id, "attempts": run.attempts}


def _store_run_artifact(run: TrainingRun, directory: Path, meta: dict[str, Any],
                        suffix: str = "") -> Artifact:
    name = f"{run.config['family']}-{run.config['variant']} run {run.pk}{suffix}"
    return artifact_store(project_id=run.project_id, run=run, directory=directory, meta=meta,
                          name=name, user=run.created_by)


def _cancelled(run: TrainingRun, result: Any, data: _Data, directory: Path) -> None:
    """Mark a stopped run cancelled; when its canceller asked, keep its best checkpoint
    (else its last) as an artifact first."""
    from training.modeling.config import TrainConfig
    from training.modeling.pipeline import artifact_from_checkpoints

    message = f"Cancelled at step {result.step}."
    if run.cancel_keep_best:
        meta = artifact_from_checkpoints(
            TrainConfig.from_dict(run.config), result, data.classes, directory / "artifact",
            run_info=_run_info(run), train_images=len(data.train), val_images=len(data.val))
        if meta is None:
            message += " No checkpoint had been written, so no artifact was kept."
        else:
            with transaction.atomic():
                artifact = _store_run_artifact(run, directory / "artifact", meta, " (cancelled)")
                training_run_status_set(run=run, status=Status.CANCELLED, step=result.step, best_metric=result.best_metric,
                                        best_step=result.best_step,
                                        message=f"{message} Artifact {artifact.pk} kept, from the checkpoint of "
                                                f"step {checkpoint_step(meta['run']['checkpoint'])}.")
            return
    training_run_status_set(run=run, status=Status.CANCELLED, step=result.step, message=message)


def run_dir_remove(*, run: TrainingRun) -> None:
    """Free the worker disk of a finished run (checkpoints are not needed any more)."""
    shutil.rmtree(run_dir(run), ignore_errors=True)
