"""Exports of artifacts (ONNX, int8 ONNX, TorchScript, bundle files in default storage),
export reports (size, speed and mIoU of each format) and pruning into a new artifact.
The ``*_start``/``*_get_or_start`` functions run in the web process; the ``*_build``/
``*_run`` ones on the ``default`` queue (``deployments.tasks``).

Settings (``common.conf.setting``: Django setting, else environment variable, else default):
  TESSERA_EXPORT_EVAL_IMAGES          validation images used by reports and pruning (32)
  TESSERA_INFERENCE_THREADS           intra-op threads of the runtimes a report measures
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from common.conf import setting
from common.errors import ApplicationError
from config.celery_app import enqueue_on_commit
from deployments.models import ArtifactExport
from projects.models import Asset, Job, Project
from projects.selectors import asset_pixels
from projects.services import job_create, job_finish, job_progress
from training.models import Artifact

logger = logging.getLogger(__name__)


# --- artifacts: validation data, storing new ones ---------------------------------------------------
def artifact_validation_pairs(*, artifact: Artifact, limit: int | None = None) -> tuple[
        list[np.ndarray], list[np.ndarray]]:
    """(images, targets) to measure an artifact on: the validation images of its run, else
    the project's labelled val-split assets. Targets are class maps in the artifact's
    labels (0 background, ``classes[i]`` = i), mapped through the class ids it was trained on."""
    from annotator.selectors import IGNORE_LABEL, class_labels, mask_semantic_map

    limit = limit or setting("TESSERA_EXPORT_EVAL_IMAGES", 32, int)
    labels = {int(c["class_id"]): int(c["index"]) for c in artifact.meta.get("classes", [])
              if c.get("class_id") is not None}
    if not labels:
        labels = class_labels(project=artifact.project)
    # pixels of the ignore class are left out of the scores (255 = ignore)
    labels.update({pk: label for pk, label in class_labels(project=artifact.project).items()
                   if label == IGNORE_LABEL})
    ids: list[int] = []
    run = artifact.run
    if run is not None and run.dataset.get("ids"):
        ids = list(run.dataset["ids"].get("val") or [])
    if not ids:
        ids = list(Asset.objects.filter(project_id=artifact.project_id, split=Asset.Split.VAL,
                                        mask_set__isnull=False).order_by("id")
                   .values_list("id", flat=True))
    images, targets = [], []
    for asset in Asset.objects.filter(id__in=ids[:limit]).select_related("project").order_by("id"):
        target = mask_semantic_map(asset=asset, labels=labels)
        if target is None:
            continue
        images.append(asset_pixels(asset=asset))
        targets.append(target.astype(np.uint8))
    return images, targets


def artifact_create_from_dir(*, project: Project, directory: Path, meta: dict[str, Any],
                             name: str, user=None) -> Artifact:
    """Record a run-less artifact (e.g. a pruned copy) from a local directory."""
    from training.services import artifact_store

    return artifact_store(project_id=project.pk, directory=directory, meta=meta, name=name,
                          user=user)


# --- exports ---------------------------------------------------------------------------------------------
EXPORT_FILENAMES = {
    "onnx": "model.onnx",
    "onnx-int8": "model.int8.onnx",
    "torchscript": "model.torchscript.pt",
    "bundle": "bundle.zip",
}


def artifact_export_get_or_start(*, artifact: Artifact, format: str, user,
                                 rebuild: bool = False) -> ArtifactExport:
    """The export row of (artifact, format); a build is started on the ``default`` queue
    when there is none yet (or ``rebuild`` after a failure)."""
    if format not in EXPORT_FILENAMES:
        raise ApplicationError(f"Unknown export format {format!r}.",
                               details={"format": list(EXPORT_FILENAMES)})
    with transaction.atomic():
        export, created = ArtifactExport.objects.select_for_update().get_or_create(
            artifact=artifact, format=format)
        if created or (rebuild and export.status == ArtifactExport.Status.FAILED):
            job = job_create(project=artifact.project, user=user, kind="artifact_export",
                             params={"artifact_id": artifact.pk, "format": format})
            export.status, export.error, export.job = ArtifactExport.Status.BUILDING, "", job
            export.save(update_fields=["status", "error", "job"])
            enqueue_on_commit("deployments.tasks.artifact_export_build", export.pk)
    return export


def artifact_export_build(*, export_id: int) -> None:
    """Build one export file into default storage (runs on the ``default`` queue)."""
    from deployments.runtime import build_bundle_from_artifact, load_model
    from deployments.runtime import export as runtime_export
    from training.selectors import artifact_local_dir

    export = ArtifactExport.objects.select_related("artifact").get(pk=export_id)
    job_id = export.job_id
    if job_id:
        job_progress(job_id=job_id, progress=0.1, message=f"Exporting {export.format}...")
    tmp = Path(tempfile.mkdtemp(prefix="tessera-export-"))
    try:
        local = artifact_local_dir(artifact=export.artifact)
        out = tmp / EXPORT_FILENAMES[export.format]
        if export.format == "bundle":
            build_bundle_from_artifact(local, out, cache_dir=tmp)
        else:
            model, meta = load_model(local)
            if export.format == "torchscript":
                runtime_export.export_torchscript(model, meta, out)
            else:
                fp32 = tmp / "model.onnx"
                runtime_export.export_onnx(model, meta, fp32)
                if export.format == "onnx-int8":
                    runtime_export.quantize_onnx_dynamic(fp32, out)
        name = f"exports/artifacts/{export.artifact_id}/{uuid.uuid4().hex[:8]}-{out.name}"
        with open(out, "rb") as fh:
            stored = default_storage.save(name, File(fh))
        size = out.stat().st_size
    except Exception as exc:  # noqa: BLE001 - the reason goes to the row and the job
        logger.exception("export %s failed", export_id)
        reason = f"{type(exc).__name__}: {exc}"[:5000]
        ArtifactExport.objects.filter(pk=export_id).update(
            status=ArtifactExport.Status.FAILED, error=reason, finished_at=timezone.now())
        if job_id:
            job_finish(job_id=job_id, errors=[{"message": reason}], message="Export failed.")
        return
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ArtifactExport.objects.filter(pk=export_id).update(
        status=ArtifactExport.Status.READY, storage_name=stored, size_bytes=size,
        finished_at=timezone.now())
    if job_id:
        job_finish(job_id=job_id, message=f"{export.format} export ready ({size} bytes).", result={
            "artifact_id": export.artifact_id, "format": export.format, "size_bytes": size,
            "download_url": f"/api/v1/artifacts/{export.artifact_id}/export/?format={export.format}"})


REPORT_FORMATS = ("onnx", "onnx-int8-dynamic", "onnx-int8-static", "onnx-fp16", "torchscript",
                  "pruned")


def artifact_report_start(*, artifact: Artifact, user, formats: Sequence[str] = REPORT_FORMATS,
                          prune_ratio: float = 0.3) -> Job:
    """Start measuring the export formats (size, speed, mIoU delta) on the default queue."""
    unknown = sorted(set(formats) - set(REPORT_FORMATS) - {"onnx-int8-dynamic-matmul"})
    if unknown:
        raise ApplicationError(f"Unknown report formats {unknown}.",
                               details={"formats": list(REPORT_FORMATS)})
    if not 0.0 <= prune_ratio < 1.0:
        raise ApplicationError("prune_ratio must be in [0, 1).")
    with transaction.atomic():
        job = job_create(project=artifact.project, user=user, kind="artifact_report",
                         params={"artifact_id": artifact.pk, "formats": list(formats),
                                 "prune_ratio": prune_ratio})
        enqueue_on_commit("deployments.tasks.artifact_report_run", job.pk)
    return job


def artifact_report_run(*, job_id: int) -> None:
    """Compute ``export_report`` for the job's artifact on its validation images."""
    from deployments.runtime import load_model
    from deployments.runtime import report as runtime_report
    from training.selectors import artifact_local_dir

    job = Job.objects.get(pk=job_id)
    params = job.params
    tmp = Path(tempfile.mkdtemp(prefix="tessera-report-"))
    try:
        artifact = Artifact.objects.select_related("run", "project").get(pk=params["artifact_id"])
        job_progress(job_id=job_id, progress=0.05, message="Reading validation images...")
        images, targets = artifact_validation_pairs(artifact=artifact)
        if not images:
            raise ApplicationError("The artifact's project has no labelled validation images "
                                   "to measure the exports on.", code="no_validation_data")
        job_progress(job_id=job_id, progress=0.1, message="Exporting and measuring...")
        model, meta = load_model(artifact_local_dir(artifact=artifact))
        report = runtime_report.export_report(
            model, meta, tmp, val_images=images, val_targets=targets,
            formats=params.get("formats") or REPORT_FORMATS,
            prune_ratio=float(params.get("prune_ratio", 0.3)),
            threads=setting("TESSERA_INFERENCE_THREADS", None, int))
    except Exception as exc:  # noqa: BLE001
        logger.exception("export report %s failed", job_id)
        message = exc.message if isinstance(exc, ApplicationError) else f"{type(exc).__name__}: {exc}"
        job_finish(job_id=job_id, errors=[{"message": message}], message="Report failed.")
        return
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for entry in report["formats"].values():
        entry.pop("path", None)  # a temporary path on the worker means nothing to a client
    report["artifact_id"] = artifact.pk
    job_finish(job_id=job_id, result=report, message="Report ready.")


def artifact_prune_start(*, artifact: Artifact, user, ratio: float) -> Job:
    """Start pruning (global magnitude, unstructured) into a new artifact."""
    if not 0.0 < ratio < 1.0:
        raise ApplicationError("ratio must be between 0 and 1 (exclusive).", details={"ratio": [ratio]})
    with transaction.atomic():
        job = job_create(project=artifact.project, user=user, kind="artifact_prune",
                         params={"artifact_id": artifact.pk, "ratio": ratio})
        enqueue_on_commit("deployments.tasks.artifact_prune_run", job.pk)
    return job


def artifact_prune_run(*, job_id: int) -> Artifact | None:
    """Prune the job's artifact into a new Artifact whose meta has ``pruning``: ratio,
    sparsity, and mIoU before/after on the validation images (None when there are none)."""
    from deployments.runtime import TorchPredictor, load_model, write_artifact
    from deployments.runtime import export as runtime_export
    from deployments.runtime import report as runtime_report
    from training.selectors import artifact_local_dir

    job = Job.objects.get(pk=job_id)
    tmp = Path(tempfile.mkdtemp(prefix="tessera-prune-"))
    try:
        source = Artifact.objects.select_related("run", "project").get(pk=job.params["artifact_id"])
        ratio = float(job.params["ratio"])
        job_progress(job_id=job_id, progress=0.1, message=f"Pruning {ratio:.0%} of the weights...")
        model, meta = load_model(artifact_local_dir(artifact=source))
        pruned, info = runtime_export.prune_global_magnitude(model, ratio)
        images, targets = artifact_validation_pairs(artifact=source)
        before = after = None
        if images:
            job_progress(job_id=job_id, progress=0.4, message="Measuring mIoU before and after...")
            before = runtime_report.evaluate_predictor(
                TorchPredictor.from_model(model, meta), images, targets)["miou"]
            after = runtime_report.evaluate_predictor(
                TorchPredictor.from_model(pruned, meta), images, targets)["miou"]
        new_meta = dict(source.meta)
        new_meta["pruning"] = {
            "source_artifact": source.pk, "method": "global L1 magnitude, unstructured",
            "ratio": ratio, "sparsity": info["sparsity"], "pruned_weights": info["pruned_weights"],
            "total_weights": info["total_weights"], "validation_images": len(images),
            "miou_before": before, "miou": after,
            "miou_delta": (after - before) if images else None,
        }
        write_artifact(pruned, new_meta, tmp / "artifact")
        artifact = artifact_create_from_dir(
            project=source.project, directory=tmp / "artifact", meta=new_meta,
            name=f"{source.name} pruned {ratio:.0%}", user=job.created_by)
    except Exception as exc:  # noqa: BLE001
        logger.exception("pruning job %s failed", job_id)
        job_finish(job_id=job_id, errors=[{"message": f"{type(exc).__name__}: {exc}"}],
                   message="Pruning failed.")
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    job_finish(job_id=job_id, message=f"Pruned artifact {artifact.pk} created.",
               result={"artifact_id": artifact.pk, **new_meta["pruning"]})
    return artifact
