"""Reads of the training app, with the permission checks of projects.selectors."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Count, OuterRef, QuerySet, Subquery

from projects.models import Membership, Project, Role
from projects.selectors import object_get_for_user
from training.models import Artifact, MetricPoint, TrainingRun, TrainingWorkflow


def workflow_list(*, project: Project) -> QuerySet[TrainingWorkflow]:
    return TrainingWorkflow.objects.filter(project=project).order_by("-created_at", "-id")


def workflow_get_for_user(*, user, workflow_id: int, min_role: str = Role.VIEWER) -> TrainingWorkflow:
    return object_get_for_user(TrainingWorkflow, user=user, pk=workflow_id, min_role=min_role,
                               label="Workflow")


def run_get_for_user(*, user, run_id: int, min_role: str = Role.VIEWER) -> TrainingRun:
    return object_get_for_user(TrainingRun, user=user, pk=run_id, min_role=min_role, label="Training")


def model_catalogue() -> list[dict]:
    """The model specs, each with ``local_sources`` (source -> weights present on this
    machine) and ``suggested_pretrained``: the default source when its weights are here,
    else the first source that is, else "none"."""
    from training.modeling.registry import NO_PRETRAINED, list_specs, local_sources

    catalogue = []
    for spec in list_specs():
        local = local_sources(spec, settings.TESSERA_WEIGHTS_DIR)
        present = [s for s in spec.pretrained_sources() if local[s] and s != NO_PRETRAINED]
        suggested = spec.default_pretrained if local.get(spec.default_pretrained) else (
            present[0] if present else NO_PRETRAINED)
        catalogue.append({**spec.to_dict(), "local_sources": local, "suggested_pretrained": suggested})
    return catalogue


def run_number(*, run: TrainingRun) -> int:
    """The run's number within its project: 1 for its first run, 2 for the next, ..."""
    return TrainingRun.objects.filter(project_id=run.project_id, id__lte=run.id).count()


def _run_number_subquery() -> Subquery:
    earlier = (TrainingRun.objects.filter(project=OuterRef("project"), id__lte=OuterRef("id"))
               .order_by().values("project").annotate(n=Count("id")).values("n"))
    return Subquery(earlier)


def run_list_for_user(*, user, filters: dict) -> QuerySet[TrainingRun]:
    """Runs of the projects the user is a member of (each with ``number``, its position in
    its project); filters: project, status."""
    projects = Membership.objects.filter(user=user).values("project_id")
    qs = (TrainingRun.objects.filter(project_id__in=projects).select_related("artifact")
          .annotate(number=_run_number_subquery()))
    if filters.get("project"):
        qs = qs.filter(project_id=filters["project"])
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    return qs.order_by("-created_at", "-id")


def metric_list(*, run: TrainingRun, after_id: int | None = None, kind: str | None = None) -> QuerySet[MetricPoint]:
    qs = MetricPoint.objects.filter(run=run)
    if after_id:
        qs = qs.filter(id__gt=after_id)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("step", "id")


def artifact_get_for_user(*, user, artifact_id: int, min_role: str = Role.VIEWER) -> Artifact:
    return object_get_for_user(Artifact, user=user, pk=artifact_id, min_role=min_role, label="Artifact")


def artifact_list_for_user(*, user, filters: dict) -> QuerySet[Artifact]:
    projects = Membership.objects.filter(user=user).values("project_id")
    qs = Artifact.objects.filter(project_id__in=projects)
    if filters.get("project"):
        qs = qs.filter(project_id=filters["project"])
    return qs.order_by("-created_at", "-id")


def artifact_local_dir(*, artifact: Artifact) -> Path:
    """A local directory holding the artifact (tessera.json + model/), for
    ``training.modeling.artifact.load_artifact``.

    With the filesystem storage this is the stored folder itself; otherwise the files
    are downloaded once into ``<TESSERA_VAR_DIR>/artifact-cache/<id>/`` (atomically)."""
    files: dict[str, str] = artifact.files
    try:
        local = Path(default_storage.path(artifact.storage_prefix))
        if all(default_storage.path(name) == str(local / rel) for rel, name in files.items()):
            return local
    except NotImplementedError:  # remote storage (S3)
        pass
    cache = Path(settings.VAR_DIR) / "artifact-cache" / str(artifact.pk)
    if (cache / "tessera.json").is_file():
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{artifact.pk}.", dir=cache.parent))
    try:
        for rel, name in files.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with default_storage.open(name, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
        os.replace(tmp, cache) if not cache.exists() else shutil.rmtree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return cache
