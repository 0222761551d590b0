"""Writes of the training app: workflows, starting/cancelling/executing runs, recovering
runs whose worker died, and storing artifacts.

The model code lives in ``training.modeling`` (no Django); this module hands it plain
arrays and turns its callbacks into MetricPoint/Checkpoint rows, heartbeats and live
events (``training.events``).

Settings (read with defaults; environment variables of the same name):
  TESSERA_TRAINING_DIR                 worker disk for run folders and checkpoints
                                       (default <TESSERA_VAR_DIR>/training); each
                                       checkpoint is also copied to the default storage,
                                       from where another worker resumes a lost run
  TESSERA_TRAINING_HEARTBEAT_S         heartbeat period of a running worker (5)
  TESSERA_TRAINING_HEARTBEAT_TIMEOUT_S heartbeat age after which a run counts as lost (60)
  TESSERA_TRAINING_MAX_ATTEMPTS        resumptions of a lost run before it fails (2)
  TESSERA_GPU_MEMORY_GB                GPU memory of a worker; workflows needing more are
                                       refused up front (unset = no check)
  TESSERA_GPUS_PER_WORKER              most GPUs one run may ask for (1). A run with
                                       num_gpus > 1 is started by torchrun as that many
                                       DDP processes (training.modeling.distributed): one
                                       GPU each on CUDA, CPU processes on gloo without it
  TESSERA_TORCH_THREADS                torch CPU threads in the worker, and per process
                                       of a multi-process run (unset = torch default;
                                       cores / processes for a multi-process run)
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from common.conf import setting
from common.errors import ApplicationError
from projects.models import Asset, LabelClass, Project
from projects.selectors import asset_pixels
from training import events
from training.events import publish_run_event
from training.modeling.checkpoints import CHECKPOINTS_DIR, STATE_FILE, checkpoint_step
from training.models import Artifact, Checkpoint, MetricPoint, TrainingRun, TrainingWorkflow

logger = logging.getLogger(__name__)
Status = TrainingRun.Status


def training_dir() -> Path:
    return Path(setting("TESSERA_TRAINING_DIR", str(Path(settings.VAR_DIR) / "training")))


def heartbeat_timeout_s() -> float:
    return setting("TESSERA_TRAINING_HEARTBEAT_TIMEOUT_S", 60.0, float)


def run_dir(run: TrainingRun) -> Path:
    return training_dir() / "runs" / f"{run.pk}-{run.key.hex}"


# --- workflows ---------------------------------------------------------------------
def workflow_config_check(*, config: dict[str, Any]) -> dict[str, Any]:
    """Validate a workflow's settings; returns the resolved config dict or raises a 400
    ApplicationError whose details list every reason."""
    from training.modeling.trainer import (
        TrainConfig,
        TrainConfigError,
        estimate_memory_gb,
        validate_config,
    )

    try:
        parsed = TrainConfig.from_dict(config)
    except TrainConfigError as exc:
        raise ApplicationError(str(exc), code="invalid_workflow", details={"problems": exc.problems}) from None
    except TypeError as exc:
        raise ApplicationError(str(exc), code="invalid_workflow", details={"problems": [str(exc)]}) from None
    problems = validate_config(parsed)
    if not problems:
        gpus = setting("TESSERA_GPUS_PER_WORKER", 1, int)
        if parsed.num_gpus > gpus:
            problems.append(f"num_gpus {parsed.num_gpus} is more than a worker has ({gpus})")
        elif parsed.num_gpus > 1:
            import torch

            # Without CUDA the processes run on CPU (gloo); with it, one GPU per process.
            if torch.cuda.is_available() and parsed.num_gpus > torch.cuda.device_count():
                problems.append(f"num_gpus {parsed.num_gpus} is more than this machine's "
                                f"{torch.cuda.device_count()} GPUs")
        memory = setting("TESSERA_GPU_MEMORY_GB", None, float)
        need = estimate_memory_gb(parsed)
        if memory is not None and need > memory:
            problems.append(
                f"{parsed.family}/{parsed.variant} at batch {parsed.batch_size} needs about "
                f"{need:.1f} GB of GPU memory; the workers have {memory:.1f} GB. Lower the "
                f"batch size or resolution, or pick a smaller variant."
            )
    if problems:
        raise ApplicationError("This training cannot run: " + "; ".join(problems),
                               code="invalid_workflow", details={"problems": problems})
    return parsed.resolved().to_dict()


def workflow_create(*, project: Project, user, name: str, config: dict[str, Any],
                    val_fraction: float = 0.2) -> TrainingWorkflow:
    if not 0.0 < val_fraction < 1.0:
        raise ApplicationError("val_fraction must be between 0 and 1.", code="invalid_workflow",
                               details={"problems": ["val_fraction must be between 0 and 1"]})
    resolved = workflow_config_check(config=config)
    return TrainingWorkflow.objects.create(project=project, name=name.strip() or "Workflow",
                                           config=resolved, val_fraction=val_fraction,
                                           created_by=user)


def workflow_delete(*, workflow: TrainingWorkflow) -> None:
    workflow.delete()


# --- starting and cancelling ---------------------------------------------------------
def _labeled_counts(project: Project) -> dict[str, int]:
    qs = Asset.objects.filter(project=project, mask_set__isnull=False)
    return {
        "train": qs.filter(split=Asset.Split.TRAIN).count(),
        "val": qs.filter(split=Asset.Split.VAL).count(),
    }


def training_run_start(*, workflow: TrainingWorkflow, user) -> TrainingRun:
    """Create a queued run of ``workflow`` and enqueue it (after commit). Refuses (400)
    when the project has no classes or no labelled training images."""
    project = workflow.project
    config = workflow_config_check(config=workflow.config)
    problems = []
    if not LabelClass.objects.filter(project=project, is_ignore=False).exists():
        problems.append("the project has no label classes")
    counts = _labeled_counts(project)
    if counts["train"] == 0:
        problems.append("the project has no labelled images in the train split")
    elif counts["val"] == 0 and counts["train"] < 2:
        problems.append("at least 2 labelled images are needed (one is held out for validation)")
    if problems:
        raise ApplicationError("This training cannot start: " + "; ".join(problems),
                               code="no_training_data", details={"problems": problems})
    with transaction.atomic():
        run = TrainingRun.objects.create(
            project=project, workflow=workflow, config=config, val_fraction=workflow.val_fraction,
            total_steps=config["steps"], created_by=user, message="Waiting for a GPU worker.",
        )
        transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def _enqueue(run_id: int) -> None:
    from training.tasks import training_run_execute

    training_run_execute.delay(run_id)


def run_status_payload(run: TrainingRun) -> dict[str, Any]:
    return {"status": run.status, "step": run.step, "total_steps": run.total_steps,
            "message": run.message, "error": run.error, "attempts": run.attempts}


def _set_status(run: TrainingRun, status: str, **fields: Any) -> None:
    """Update status (and fields) in the database and publish it after commit."""
    run.status = status
    for key, value in fields.items():
        setattr(run, key, value)
    if status in TrainingRun.FINISHED and run.finished_at is None:
        run.finished_at = timezone.now()
    run.save(update_fields=["status", "finished_at", *fields.keys()])
    publish_run_event(run.pk, "training.status", run_status_payload(run))


@transaction.atomic
def training_run_cancel(*, run: TrainingRun, keep_best: bool = False) -> TrainingRun:
    """Ask a run to stop. A queued run is cancelled at once; a running one stops within
    a step or two of its worker noticing, and with ``keep_best`` leaves an artifact made
    from its best checkpoint so far (else its last one). Finished runs cannot be
    cancelled (409)."""
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    if run.status in TrainingRun.FINISHED:
        raise ApplicationError(f"The training is {run.status} already.", code="not_running",
                               status_code=409)
    run.cancel_requested = True
    run.cancel_keep_best = keep_best
    if run.status == Status.QUEUED:
        _set_status(run, Status.CANCELLED, cancel_requested=True, cancel_keep_best=keep_best,
                    message="Cancelled before it started.")
    else:
        run.message = "Cancelling (keeping the best checkpoint)..." if keep_best else "Cancelling..."
        run.save(update_fields=["cancel_requested", "cancel_keep_best", "message"])
    return run


# --- recovery of runs whose worker died ---------------------------------------------
def training_runs_recover(*, now=None) -> list[int]:
    """Runs in preparing/running whose heartbeat is older than the timeout lost their
    worker: each is re-queued to resume from its last checkpoint (attempts + 1) or,
    after TESSERA_TRAINING_MAX_ATTEMPTS, marked failed with the reason. Returns the ids
    of the runs it re-queued. Cheap when nothing is stale (one indexed query)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=heartbeat_timeout_s())
    stale = list(TrainingRun.objects.filter(status__in=[Status.PREPARING, Status.RUNNING],
                                            heartbeat_at__lt=cutoff).values_list("pk", flat=True))
    requeued = []
    max_attempts = setting("TESSERA_TRAINING_MAX_ATTEMPTS", 2, int)
    for pk in stale:
        with transaction.atomic():
            run = TrainingRun.objects.select_for_update().filter(
                pk=pk, status__in=[Status.PREPARING, Status.RUNNING], heartbeat_at__lt=cutoff
            ).first()
            if run is None:
                continue
            last = f"{run.worker or 'its worker'} stopped answering at step {run.step}"
            if run.cancel_requested:
                _set_status(run, Status.CANCELLED, message=f"Cancelled ({last}).")
            elif run.attempts >= max_attempts:
                _set_status(run, Status.FAILED, error=f"The training was lost: {last}; "
                            f"gave up after {run.attempts} resumptions.",
                            message="Failed: worker lost.")
            else:
                _set_status(run, Status.QUEUED, attempts=run.attempts + 1, heartbeat_at=None,
                            message=f"Resuming from the last checkpoint ({last}).")
                transaction.on_commit(lambda pk=pk: _enqueue(pk))
                requeued.append(pk)
    return requeued


# --- execution (in the GPU worker) ---------------------------------------------------
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
            _set_status(run, Status.CANCELLED, message="Cancelled before it started.")
            return None
        _set_status(run, Status.PREPARING, worker=worker, heartbeat_at=timezone.now(),
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


# --- checkpoints in storage ------------------------------------------------------------------
# Every checkpoint the trainer writes on the worker's disk is copied to the default storage,
# so that a run whose worker died resumes on any other worker (its own disk starts empty).
# A checkpoint folder is flat; trainer_state.json is copied last and marks a complete copy.
def checkpoint_storage_prefix(*, run: TrainingRun, name: str) -> str:
    return f"checkpoints/{run.project_id}/{run.pk}-{run.key.hex}/{name}/"


def checkpoint_upload(*, run: TrainingRun, path: Path) -> None:
    prefix = checkpoint_storage_prefix(run=run, name=path.name)
    files = sorted((p for p in path.iterdir() if p.is_file()), key=lambda p: p.name == STATE_FILE)
    for file in files:
        name = prefix + file.name
        if default_storage.exists(name):
            default_storage.delete(name)
        with open(file, "rb") as fh:
            default_storage.save(name, File(fh))


def checkpoint_storage_delete(*, run: TrainingRun, name: str) -> None:
    prefix = checkpoint_storage_prefix(run=run, name=name)
    try:
        _, files = default_storage.listdir(prefix)
    except FileNotFoundError:
        return
    for file in sorted(files, key=lambda f: f != STATE_FILE):  # the completion mark first
        default_storage.delete(prefix + file)


def _checkpoint_download(run: TrainingRun, name: str, checkpoints_dir: Path) -> Path | None:
    prefix = checkpoint_storage_prefix(run=run, name=name)
    target = checkpoints_dir / name
    if target.is_dir() or not default_storage.exists(prefix + STATE_FILE):
        return target if target.is_dir() else None
    tmp = checkpoints_dir / f".download-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _, files = default_storage.listdir(prefix)
    for file in files:
        with default_storage.open(prefix + file, "rb") as src, open(tmp / file, "wb") as dst:
            shutil.copyfileobj(src, dst)
    tmp.rename(target)
    return target


def checkpoints_fetch(*, run: TrainingRun, directory: Path) -> Path | None:
    """The run's newest checkpoint, from this worker's disk or else copied down from storage
    together with the ones the trainer still tracks (the best among them); None: none yet."""
    from training.modeling.trainer import latest_checkpoint

    local = latest_checkpoint(directory)
    newest = Checkpoint.objects.filter(run=run).order_by("-step").first()
    if newest is None or (local is not None and checkpoint_step(local.name) >= newest.step):
        return local
    checkpoints_dir = directory / CHECKPOINTS_DIR
    fetched = _checkpoint_download(run, Path(newest.path).name, checkpoints_dir)
    if fetched is None:
        return local
    state = json.loads((fetched / STATE_FILE).read_text())
    for name in {*(state.get("checkpoints") or []), state.get("best_checkpoint")} - {None, fetched.name}:
        _checkpoint_download(run, name, checkpoints_dir)
    return fetched


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
        _set_status(run, Status.FAILED, error=_failure_reason(exc)[:5000], message="Failed.")
    finally:
        heartbeat.done.set()
        heartbeat.join(timeout=10)
        events.flush()  # the final status reaches listeners before the task returns


def _failure_reason(exc: Exception) -> str:
    from training.modeling.distributed import DistributedTrainingError
    from training.modeling.registry import ModelRegistryError, WeightsNotFoundError
    from training.modeling.trainer import TrainConfigError

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
    from training.modeling.pipeline import run_training
    from training.modeling.trainer import TrainConfig

    data = _collect_data(run)
    directory = run_dir(run)
    resume = checkpoints_fetch(run=run, directory=directory)
    resumed_step = checkpoint_step(resume.name) if resume else 0
    with transaction.atomic():
        # Points logged after the checkpoint are trained again: drop the old ones.
        MetricPoint.objects.filter(run=run, step__gt=resumed_step).delete()
        Checkpoint.objects.filter(run=run, step__gt=resumed_step).delete()
        message = (f"Resumed at step {resumed_step}." if resume else "Training started.")
        _set_status(run, Status.RUNNING, step=resumed_step, message=message,
                    dataset={"ids": data.ids, "train": len(data.train), "val": len(data.val)})

    processes = int(run.config.get("num_gpus") or 1)
    args = (TrainConfig.from_dict(run.config), data.train, data.val, data.classes,
            directory, directory / "artifact")
    options: dict[str, Any] = {
        "callbacks": _RunCallbacks(run, heartbeat, data.val_asset_ids, _device_name(processes)),
        "weights_dir": setting("TESSERA_WEIGHTS_DIR", None),
        "resume_from": resume,
        "run_info": _run_info(run),
    }
    if processes > 1:
        # torchrun starts the processes; their callbacks come back here, in this thread.
        from training.modeling.distributed import run_training_distributed

        outcome = run_training_distributed(*args, num_processes=processes,
                                           threads_per_process=setting("TESSERA_TORCH_THREADS", None, int),
                                           **options)
    else:
        outcome = run_training(*args, **options)
    result = outcome.result
    run.refresh_from_db()
    if result.status == "cancelled":
        _cancelled(run, result, data, directory)
        return
    with transaction.atomic():
        artifact = _store_run_artifact(run, outcome.artifact_dir, outcome.meta)
        stopped = " (early stop)" if result.status == "early_stopped" else ""
        _set_status(run, Status.COMPLETED, step=result.step, best_metric=result.best_metric,
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
    from training.modeling.pipeline import artifact_from_checkpoints
    from training.modeling.trainer import TrainConfig

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
                _set_status(run, Status.CANCELLED, step=result.step, best_metric=result.best_metric,
                            best_step=result.best_step,
                            message=f"{message} Artifact {artifact.pk} kept, from the checkpoint of "
                                    f"step {checkpoint_step(meta['run']['checkpoint'])}.")
            return
    _set_status(run, Status.CANCELLED, step=result.step, message=message)


def artifact_store(*, project_id: int, directory: Path, meta: dict[str, Any], name: str,
                   run: TrainingRun | None = None, user=None) -> Artifact:
    """Copy an artifact directory (model/ + tessera.json) into default storage and record
    it: a run's result, or a run-less derivative such as a pruned copy. Files written
    before a failure are removed again, so an artifact exists completely or not at all."""
    prefix = f"artifacts/{project_id}/{uuid.uuid4().hex}/"
    written: dict[str, str] = {}
    size = 0
    try:
        for path in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
            rel = path.relative_to(directory).as_posix()
            with open(path, "rb") as fh:
                written[rel] = default_storage.save(prefix + rel, File(fh))
            size += path.stat().st_size
        return Artifact.objects.create(
            project_id=project_id, run=run, name=name[:200], family=meta["family"],
            variant=meta["variant"], meta=meta, storage_prefix=prefix, files=written,
            size_bytes=size, created_by=user,
        )
    except BaseException:
        for stored in written.values():
            default_storage.delete(stored)
        raise


def artifact_delete(*, artifact: Artifact) -> None:
    names = list(artifact.files.values())
    with transaction.atomic():
        artifact.delete()
        transaction.on_commit(lambda: [default_storage.delete(n) for n in names])


def run_dir_remove(*, run: TrainingRun) -> None:
    """Free the worker disk of a finished run (checkpoints are not needed any more)."""
    shutil.rmtree(run_dir(run), ignore_errors=True)
