"""Reads, and the one place that decides who may see or change a project.

Non-members get 404 (a project's existence is not revealed); members whose role is
too low for the action get 403."""
from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery

from common.errors import ForbiddenError, NotFoundError
from projects.models import ROLE_RANK, Asset, Job, LabelClass, Membership, Project, Role, Video


def membership_role(*, user, project_id: int) -> str | None:
    if not user or not user.is_authenticated:
        return None
    return (
        Membership.objects.filter(project_id=project_id, user=user,
                                  project__deleting_since__isnull=True)
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
    """A project's job. The job of a project being (or already) deleted is its
    starter's only, so that they can follow the deletion."""
    gone = (Job.objects.filter(pk=job_id)
            .filter(Q(project__isnull=True) | Q(project__deleting_since__isnull=False)).first())
    if gone is not None:
        if user.is_authenticated and gone.created_by_id == user.pk:
            return gone
        raise NotFoundError("Job not found.")
    return object_get_for_user(Job, user=user, pk=job_id, min_role=min_role, label="Job")


def label_class_get(*, project: Project, class_id: int) -> LabelClass:
    label_class = LabelClass.objects.filter(project=project, pk=class_id).first()
    if label_class is None:
        raise NotFoundError("Class not found.")
    return label_class


PROJECT_SORTS = {"newest": ("-created_at", "-id"), "oldest": ("created_at", "id"),
                 "name": ("name", "id"), "updated": ("-updated_at", "-id")}


def project_list_for_user(*, user, search: str = "", sort: str = "newest") -> QuerySet[Project]:
    """The user's projects with their role, asset counts per status and a cover asset
    (the first one with a thumbnail), in one query."""
    role = Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
    cover = (Asset.objects.filter(project=OuterRef("pk")).exclude(thumbnail="")
             .order_by("id").values("id")[:1])
    per_status = {f"count_{value}": Count("assets", filter=Q(assets__status=value))
                  for value in Asset.Status.values}
    qs = (
        Project.objects.filter(memberships__user=user, deleting_since__isnull=True)
        .annotate(role=Subquery(role), asset_count=Count("assets"), cover_asset_id=Subquery(cover),
                  **per_status)
    )
    if search:
        qs = qs.filter(name__icontains=search)
    return qs.order_by(*PROJECT_SORTS.get(sort, PROJECT_SORTS["newest"]))


def project_status_counts(project: Project) -> dict[str, int]:
    """{status: count} for every status, read from a project_list_for_user row."""
    return {value: getattr(project, f"count_{value}", 0) for value in Asset.Status.values}


def asset_list(*, project: Project, filters: dict) -> QuerySet[Asset]:
    qs = (Asset.objects.filter(project=project).order_by("id")
          .annotate(mask_revision=F("mask_set__revision__number")))
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


# --- splits, review and who has an asset open ------------------------------------------
def asset_summary(*, project: Project) -> dict:
    """Counts per split (all / labelled) and per status, the hand-placed count, and
    whether the validation split is big enough to train."""
    rows = (Asset.objects.filter(project=project)
            .values("split", "status", "split_locked")
            .annotate(n=Count("id"), labeled=Count("id", filter=Q(mask_set__isnull=False))))
    splits = {s: {"total": 0, "labeled": 0} for s in Asset.Split.values}
    statuses = dict.fromkeys(Asset.Status.values, 0)
    locked = 0
    for row in rows:
        splits[row["split"]]["total"] += row["n"]
        splits[row["split"]]["labeled"] += row["labeled"]
        statuses[row["status"]] += row["n"]
        locked += row["n"] if row["split_locked"] else 0
    return {"splits": splits, "statuses": statuses, "locked": locked,
            "total": sum(statuses.values()), "validation": validation_split_check(splits=splits)}


def validation_split_check(*, splits: dict[str, dict[str, int]]) -> dict:
    """Is the labelled val split big enough to judge a training run? It needs at least
    TESSERA_MIN_VAL_IMAGES labelled images and TESSERA_MIN_VAL_FRACTION of the labelled
    train + val images. ``message`` says how to fix it when it is not."""
    val = splits["val"]["labeled"]
    labeled = val + splits["train"]["labeled"]
    minimum = max(settings.TESSERA_MIN_VAL_IMAGES,
                  math.ceil(settings.TESSERA_MIN_VAL_FRACTION * labeled))
    if val >= minimum:
        return {"ok": True, "labeled": val, "minimum": minimum, "message": ""}
    what = "is empty" if val == 0 else f"holds only {val} labelled image{'s' if val != 1 else ''}"
    message = (f"The validation split {what}; a run needs at least {minimum} labelled "
               f"validation image{'s' if minimum != 1 else ''} "
               f"({settings.TESSERA_MIN_VAL_FRACTION:.0%} of the {labeled} labelled images, "
               f"{settings.TESSERA_MIN_VAL_IMAGES} at least). To fix it, open the project's assets "
               "and click Auto-split (e.g. 80/10/10), or select labelled images and move them "
               "to val.")
    return {"ok": False, "labeled": val, "minimum": minimum, "message": message}


def asset_open_key(asset_id: int) -> str:
    return f"tessera:asset-open:{asset_id}"


def asset_open_by(*, asset_ids: list[int]) -> dict[int, int]:
    """{asset id: user id} of the assets someone has open now (a heartbeat keeps the
    short-lived key alive)."""
    found = cache.get_many([asset_open_key(pk) for pk in asset_ids])
    return {pk: found[asset_open_key(pk)] for pk in asset_ids if asset_open_key(pk) in found}


NEXT_STATUSES = {
    "label": [Asset.Status.REJECTED, Asset.Status.IN_PROGRESS, Asset.Status.UNLABELED],
    "review": [Asset.Status.LABELED],
}


def asset_next_candidates(*, project: Project, purpose: str, after_id: int = 0,
                          batch: int = 200) -> Iterator[list[Asset]]:
    """Batches of assets to offer next: rejected, in progress and unlabelled ones to
    label; labelled ones to review. In id order after ``after_id``, then from the start up to it."""
    qs = Asset.objects.filter(project=project, status__in=NEXT_STATUSES[purpose]).order_by("id")
    for last, upto in ((after_id, None), (0, after_id)):
        while True:
            page = qs.filter(id__gt=last) if upto is None else qs.filter(id__gt=last, id__lt=upto)
            rows = list(page[:batch])
            if not rows:
                break
            yield rows
            last = rows[-1].id
