"""Reads, and the one place that decides who may see or change a project.

Non-members get 404 (a project's existence is not revealed); members whose role is
too low for the action get 403."""
from __future__ import annotations

import numpy as np
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery

from common.errors import ForbiddenError, NotFoundError
from projects.models import ROLE_RANK, Asset, Job, LabelClass, Membership, Project, Role, Video


def membership_role(*, user, project_id: int) -> str | None:
    if not user or not user.is_authenticated:
        return None
    return (
        Membership.objects.filter(project_id=project_id, user=user)
        .values_list("role", flat=True)
        .first()
    )


def require_role(
    *, user, project_id: int, min_role: str = Role.VIEWER, label: str = "Project"
) -> str:
    """Return the user's role in the project or raise 404 (not a member) / 403 (too low)."""
    role = membership_role(user=user, project_id=project_id)
    if role is None:
        raise NotFoundError(f"{label} not found.")
    if ROLE_RANK[Role(role)] < ROLE_RANK[Role(min_role)]:
        raise ForbiddenError(f"This needs the {min_role} role in the project; you are {role}.")
    return role


def project_get_for_user(*, user, project_id: int, min_role: str = Role.VIEWER) -> Project:
    role = require_role(user=user, project_id=project_id, min_role=min_role)
    project = Project.objects.get(pk=project_id)
    project.role = role
    return project


def object_get_for_user(model, *, user, pk: int, min_role: str = Role.VIEWER, label: str = "Object"):
    """Fetch any row of a model with a `project_id` field, checking the user's role there.

    Other apps use this for their project-scoped models (runs, artifacts, ...)."""
    project_id = model.objects.filter(pk=pk).values_list("project_id", flat=True).first()
    if project_id is None:
        raise NotFoundError(f"{label} not found.")
    require_role(user=user, project_id=project_id, min_role=min_role, label=label)
    return model.objects.get(pk=pk)


def asset_get_for_user(*, user, asset_id: int, min_role: str = Role.VIEWER) -> Asset:
    return object_get_for_user(Asset, user=user, pk=asset_id, min_role=min_role, label="Asset")


def video_get_for_user(*, user, video_id: int, min_role: str = Role.VIEWER) -> Video:
    return object_get_for_user(Video, user=user, pk=video_id, min_role=min_role, label="Video")


def job_list(*, project: Project, filters: dict) -> QuerySet[Job]:
    """The project's jobs, newest first; filters: kind, active (queued or running)."""
    jobs = Job.objects.filter(project=project)
    if filters.get("kind"):
        jobs = jobs.filter(kind=filters["kind"])
    if filters.get("active") is not None:
        active = Q(status__in=(Job.Status.QUEUED, Job.Status.RUNNING))
        jobs = jobs.filter(active if filters["active"] else ~active)
    return jobs.order_by("-created_at", "-id")


def job_get_for_user(*, user, job_id: int, min_role: str = Role.VIEWER) -> Job:
    return object_get_for_user(Job, user=user, pk=job_id, min_role=min_role, label="Job")


def label_class_get(*, project: Project, class_id: int) -> LabelClass:
    label_class = LabelClass.objects.filter(project=project, pk=class_id).first()
    if label_class is None:
        raise NotFoundError("Class not found.")
    return label_class


def project_list_for_user(*, user) -> QuerySet[Project]:
    role = Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
    return (
        Project.objects.filter(memberships__user=user)
        .annotate(role=Subquery(role), asset_count=Count("assets", distinct=True))
        .order_by("-created_at", "-id")
    )


def asset_list(*, project: Project, filters: dict) -> QuerySet[Asset]:
    qs = Asset.objects.filter(project=project).order_by("id")
    for key in ("status", "split"):
        if filters.get(key):
            qs = qs.filter(**{key: filters[key]})
    if filters.get("video"):
        qs = qs.filter(video_id=filters["video"])
    if filters.get("search"):
        qs = qs.filter(name__icontains=filters["search"])
    return qs


def class_list(*, project: Project) -> QuerySet[LabelClass]:
    return LabelClass.objects.filter(project=project).order_by("index")


def member_list(*, project: Project) -> QuerySet[Membership]:
    return Membership.objects.filter(project=project).select_related("user").order_by("id")


def member_get(*, project: Project, member_id: int) -> Membership:
    membership = member_list(project=project).filter(pk=member_id).first()
    if membership is None:
        raise NotFoundError("Member not found.")
    return membership


def asset_pixels(*, asset: Asset) -> np.ndarray:
    """The asset's image as (H, W, 3) uint8 RGB (stored upright at upload)."""
    from PIL import Image

    with asset.file.open("rb") as fh, Image.open(fh) as image:
        return np.asarray(image.convert("RGB"))
