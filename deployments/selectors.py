"""Reads of the deployments app, with the permission checks of projects.selectors (the
registry of running inference workers is ``deployments.registry``)."""
from __future__ import annotations

from django.db.models import QuerySet

from common.errors import NotFoundError
from deployments.models import ApiKey, ArtifactExport, Deployment
from projects.models import Job, Membership, Role
from projects.selectors import object_get_for_user
from training.models import Artifact


def deployment_get_for_user(*, user, deployment_id: int, min_role: str = Role.VIEWER) -> Deployment:
    return object_get_for_user(Deployment, user=user, pk=deployment_id, min_role=min_role,
                               label="Deployment")


def deployment_list_for_user(*, user, filters: dict) -> QuerySet[Deployment]:
    """Deployments of the user's projects; filters: project, status."""
    projects = Membership.objects.filter(user=user).values("project_id")
    qs = Deployment.objects.filter(project_id__in=projects)
    if filters.get("project"):
        qs = qs.filter(project_id=filters["project"])
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    return qs.order_by("-created_at", "-id")


def api_key_list(*, deployment: Deployment) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(deployment=deployment).order_by("-created_at", "-id")


def api_key_get(*, deployment: Deployment, key_id: int) -> ApiKey:
    key = ApiKey.objects.filter(deployment=deployment, pk=key_id).first()
    if key is None:
        raise NotFoundError("API key not found.")
    return key


def artifact_export_list(*, artifact: Artifact) -> QuerySet[ArtifactExport]:
    return ArtifactExport.objects.filter(artifact=artifact).select_related("job").order_by("format")


def artifact_report_latest(*, artifact: Artifact) -> Job | None:
    """The newest export-report job of the artifact (whatever its status)."""
    return (Job.objects.filter(project_id=artifact.project_id, kind="artifact_report",
                               params__artifact_id=artifact.pk)
            .order_by("-created_at", "-id").first())
