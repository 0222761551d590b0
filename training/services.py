"""Writes of the training app on the web side: workflows (``workflow_config_check`` is
the web's check of a config, on creating a workflow and starting a run), starting,
cancelling and recovering runs, storing and deleting artifacts.

The GPU worker's side (claiming a run, heartbeats, data, callbacks, executing it) is
``training.runner``; checkpoint copies in storage are ``training.checkpoint_storage``.

Settings (read with defaults; environment variables of the same name):
  TESSERA_TRAINING_HEARTBEAT_TIMEOUT_S heartbeat age after which a run counts as lost (60)
  TESSERA_TRAINING_MAX_ATTEMPTS        resumptions of a lost run before it fails (2)
  TESSERA_GPU_MEMORY_GB                GPU memory of a worker; workflows needing more are
                                       refused up front (unset = no check)
  TESSERA_GPUS_PER_WORKER              most GPUs one run may ask for (1). A run with
                                       num_gpus > 1 is started by torchrun as that many
                                       DDP processes (training.modeling.distributed): one
                                       GPU each on CUDA, CPU processes on gloo without it
"""
from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from common.conf import setting
from common.errors import ApplicationError
from config.celery_app import enqueue_on_commit
from projects.models import LabelClass, Project
from projects.selectors import asset_summary, validation_split_check
from training.events import publish_run_event
from training.models import Artifact, TrainingRun, TrainingWorkflow

Status = TrainingRun.Status


def heartbeat_timeout_s() -> float:
    return setting("TESSERA_TRAINING_HEARTBEAT_TIMEOUT_S", 60.0, float)


# --- workflows ---------------------------------------------------------------------
def workflow_config_check(*, config: dict[str, Any]) -> dict[str, Any]:
    """Validate a workflow's settings; returns the resolved config dict or raises a 400
    ApplicationError whose details list every reason."""
    from training.modeling.config import (
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
def training_run_start(*, workflow: TrainingWorkflow, user) -> TrainingRun:
    """Create a queued run of ``workflow`` and enqueue it (after commit). Refuses (400)
    when the project has no classes, no labelled training images, or a validation split
    that is empty or tiny (projects.selectors.validation_split_check says how to fix it)."""
    project = workflow.project
    config = workflow_config_check(config=workflow.config)
    problems = []
    if not LabelClass.objects.filter(project=project, is_ignore=False).exists():
        problems.append("the project has no label classes")
    splits = asset_summary(project=project)["splits"]
    if splits["train"]["labeled"] == 0:
        problems.append("the project has no labelled images in the train split")
    validation = validation_split_check(splits=splits)
    if not validation["ok"]:
        problems.append(validation["message"])
    if problems:
        raise ApplicationError("This training cannot start: " + "; ".join(problems),
                               code="no_training_data",
                               details={"problems": problems, "splits": splits})
    with transaction.atomic():
        run = TrainingRun.objects.create(
            project=project, workflow=workflow, config=config, val_fraction=workflow.val_fraction,
            total_steps=config["steps"], created_by=user, message="Waiting for a GPU worker.",
        )
        enqueue_on_commit("training.tasks.training_run_execute", run.pk)
    return run


def run_status_payload(run: TrainingRun) -> dict[str, Any]:
    return {"status": run.status, "step": run.step, "total_steps": run.total_steps,
            "message": run.message, "error": run.error, "attempts": run.attempts}


def training_run_status_set(*, run: TrainingRun, status: str, **fields: Any) -> None:
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
        training_run_status_set(run=run, status=Status.CANCELLED, cancel_requested=True, cancel_keep_best=keep_best,
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
                training_run_status_set(run=run, status=Status.CANCELLED, message=f"Cancelled ({last}).")
            elif run.attempts >= max_attempts:
                training_run_status_set(run=run, status=Status.FAILED, error=f"The training was lost: {last}; "
                                        f"gave up after {run.attempts} resumptions.",
                                        message="Failed: worker lost.")
            else:
                training_run_status_set(run=run, status=Status.QUEUED, attempts=run.attempts + 1, heartbeat_at=None,
                                        message=f"Resuming from the last checkpoint ({last}).")
                enqueue_on_commit("training.tasks.training_run_execute", pk)
                requeued.append(pk)
    return requeued




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
