"""Writes for projects, members, classes, assets, videos and jobs.

Every multi-step write is atomic; files written to storage are removed again when the
database write that should reference them fails, so nothing is left half-written."""
from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from common.errors import ApplicationError, is_redis_outage
from config.celery_app import enqueue_marked, enqueue_on_commit, queued_key
from projects import signals
from projects.models import Asset, Job, LabelClass, Membership, Project, Role, Video
from projects.validation import UploadRejected, check_image, looks_like_video

logger = logging.getLogger(__name__)
HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_PALETTE = [
    "#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0",
    "#f032e6", "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#800000",
]


# --- projects and members ----------------------------------------------------------
@transaction.atomic
def project_create(*, user, name: str, type: str = Project.Type.SEGMENTATION,
                   description: str = "") -> Project:
    if type != Project.Type.SEGMENTATION:
        raise ApplicationError(f"Unsupported project type {type!r}; use 'segmentation'.")
    project = Project.objects.create(name=name.strip(), type=type, description=description,
                                     created_by=user)
    Membership.objects.create(project=project, user=user, role=Role.OWNER)
    return project


def project_update(*, project: Project, data: dict) -> Project:
    for key in ("name", "description"):
        if key in data:
            setattr(project, key, data[key])
    project.full_clean()
    project.save()
    return project


PROJECT_DELETE_KIND = "project_delete"


@transaction.atomic
def project_delete_start(*, project: Project, user, confirm_name: str) -> Job:
    """Hide the project from everyone at once and queue a job that removes its data
    (files included) with progress. ``confirm_name`` must repeat the project's name."""
    project = Project.objects.select_for_update().get(pk=project.pk)
    if confirm_name.strip() != project.name.strip():
        raise ApplicationError("Type the project's name exactly to confirm its deletion.",
                               code="confirmation_mismatch", details={"confirm": ["Does not match."]})
    if project.deleting_since is not None:
        raise ApplicationError("This project is being deleted already.", code="deleting",
                               status_code=409)
    project.deleting_since = timezone.now()
    project.save(update_fields=["deleting_since"])
    job = job_create(project=project, user=user, kind=PROJECT_DELETE_KIND,
                     params={"project_id": project.pk, "name": project.name})
    enqueue_on_commit("projects.tasks.project_delete_execute", job.id)
    return job


def project_delete(*, project: Project, job_id: int | None = None) -> None:
    """Remove a project and everything it holds: training runs are cancelled, then
    deployments, artifacts (and their exports), checkpoints, assets (masks, revisions,
    thumbnails, embeddings, image files), videos and jobs go, rows and stored files."""
    from django.core.files.storage import default_storage

    from deployments.models import Deployment
    from deployments.services import deployment_delete
    from training.models import Artifact, TrainingRun
    from training.services import artifact_delete, training_run_cancel

    def progress(fraction: float, message: str) -> None:
        if job_id is not None:
            job_progress(job_id=job_id, progress=fraction, message=message)

    progress(0.0, "Stopping trainings and deployments")
    for run in TrainingRun.objects.filter(project=project).exclude(status__in=TrainingRun.FINISHED):
        training_run_cancel(run=run)
    for deployment in Deployment.objects.filter(project=project):
        deployment_delete(deployment=deployment)
    for artifact in Artifact.objects.filter(project=project):
        artifact_delete(artifact=artifact)
    storage_delete_tree(prefix=f"checkpoints/{project.pk}/")
    asset_ids = list(Asset.objects.filter(project=project).values_list("id", flat=True))
    for start in range(0, len(asset_ids), 100):
        progress(0.05 + 0.9 * start / max(1, len(asset_ids)),
                 f"Deleting assets: {start} of {len(asset_ids)}")
        assets_delete(asset_ids=asset_ids[start:start + 100])
    progress(0.95, "Deleting videos and jobs")
    for model in (Video, Job):
        rows = model.objects.filter(project=project).exclude(file="")
        if model is Job and job_id is not None:
            rows = rows.exclude(pk=job_id)
        for name in list(rows.values_list("file", flat=True)):
            default_storage.delete(name)
    Job.objects.filter(project=project).exclude(pk=job_id).delete()
    project.delete()


def storage_delete_tree(*, prefix: str) -> None:
    """Delete every stored file under ``prefix`` (a folder ending in '/')."""
    from django.core.files.storage import default_storage

    try:
        folders, files = default_storage.listdir(prefix)
    except (FileNotFoundError, NotImplementedError, OSError):
        return
    for name in files:
        default_storage.delete(prefix + name)
    for folder in folders:
        storage_delete_tree(prefix=f"{prefix}{folder}/")


@transaction.atomic
def member_set(*, project: Project, username: str, role: str) -> Membership:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ApplicationError(f"No user named {username!r}.", code="unknown_user")
    if role not in Role.values:
        raise ApplicationError(f"Unknown role {role!r}; use one of {Role.values}.")
    _lock_owners(project)
    membership, _ = Membership.objects.select_for_update().update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    _ensure_an_owner_remains(project)
    return membership


@transaction.atomic
def member_role_set(*, membership: Membership, role: str) -> Membership:
    """Change a member's role; demoting the last owner is refused (409 last_owner)."""
    if role not in Role.values:
        raise ApplicationError(f"Unknown role {role!r}; use one of {Role.values}.")
    _lock_owners(membership.project)
    membership.role = role
    membership.save(update_fields=["role"])
    _ensure_an_owner_remains(membership.project)
    return membership


@transaction.atomic
def member_create_user(*, project: Project, username: str, role: str) -> tuple[Membership, str]:
    """A new local account with a one-time password, added to the project with ``role``."""
    from common.services import user_create_with_one_time_password

    user, password = user_create_with_one_time_password(username=username)
    return member_set(project=project, username=user.username, role=role), password


@transaction.atomic
def member_remove(*, membership: Membership) -> None:
    project = membership.project
    _lock_owners(project)
    membership.delete()
    _ensure_an_owner_remains(project)


def _lock_owners(project: Project) -> None:
    """Lock the project's owner rows: two concurrent demotions cannot both see another owner."""
    list(Membership.objects.select_for_update().filter(project=project, role=Role.OWNER)
         .values_list("pk", flat=True))


def _ensure_an_owner_remains(project: Project) -> None:
    if not Membership.objects.filter(project=project, role=Role.OWNER).exists():
        raise ApplicationError("A project must keep at least one owner: make someone else "
                               "owner first.", code="last_owner", status_code=409)


# --- label classes -------------------------------------------------------------------
def _check_color(color: str) -> str:
    if not HEX_COLOR.match(color or ""):
        raise ApplicationError(f"Colour must look like #rrggbb, got {color!r}.",
                               details={"color": ["Use #rrggbb."]})
    return color.lower()


def _check_one_ignore_class(project_id: int, exclude_id: int | None = None) -> None:
    other = LabelClass.objects.filter(project_id=project_id, is_ignore=True).exclude(pk=exclude_id).first()
    if other is not None:
        raise ApplicationError(f"The project's ignore class is {other.name!r} already; a project has "
                               "at most one.", code="duplicate",
                               details={"is_ignore": ["Only one ignore class per project."]})


@transaction.atomic
def label_class_create(*, project: Project, name: str, color: str | None = None,
                       is_ignore: bool = False) -> LabelClass:
    """A new class at the next index. ``is_ignore``: the project's void / ignore class
    (its pixels are left out of training and evaluation; at most one per project)."""
    # Lock the project row so two concurrent creates cannot take the same index.
    Project.objects.select_for_update().filter(pk=project.pk).first()
    if is_ignore:
        _check_one_ignore_class(project.pk)
    name = name.strip()
    if not name:
        raise ApplicationError("A class needs a name.", details={"name": ["Required."]})
    if LabelClass.objects.filter(project=project, name__iexact=name).exists():
        raise ApplicationError(f"A class named {name!r} exists already.", code="duplicate",
                               details={"name": ["Already used in this project."]})
    last = LabelClass.objects.filter(project=project).aggregate(m=Max("index"))["m"]
    index = 0 if last is None else last + 1
    color = _check_color(color) if color else DEFAULT_PALETTE[index % len(DEFAULT_PALETTE)]
    return LabelClass.objects.create(project=project, name=name, color=color, index=index,
                                     is_ignore=is_ignore)


@transaction.atomic
def label_class_update(*, label_class: LabelClass, data: dict) -> LabelClass:
    if data.get("is_ignore"):
        Project.objects.select_for_update().filter(pk=label_class.project_id).first()
        _check_one_ignore_class(label_class.project_id, exclude_id=label_class.pk)
    if "is_ignore" in data:
        label_class.is_ignore = bool(data["is_ignore"])
    if "name" in data:
        name = data["name"].strip()
        clash = LabelClass.objects.filter(project_id=label_class.project_id, name__iexact=name)
        if clash.exclude(pk=label_class.pk).exists():
            raise ApplicationError(f"A class named {name!r} exists already.", code="duplicate")
        label_class.name = name
    if "color" in data:
        label_class.color = _check_color(data["color"])
    label_class.save()
    return label_class


def label_class_delete(*, label_class: LabelClass) -> None:
    label_class.delete()


# --- assets --------------------------------------------------------------------------
@dataclass
class UploadResult:
    created: list[Asset] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)
    videos: list[Video] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)


@contextmanager
def _stored(file_field, name: str, data: bytes):
    """Save bytes to storage; delete them again if the block that follows fails."""
    file_field.save(name, ContentFile(data), save=False)
    try:
        yield
    except BaseException:
        file_field.storage.delete(file_field.name)
        raise


def _read_limited(upload: UploadedFile, limit: int) -> bytes:
    if upload.size is not None and upload.size > limit:
        raise UploadRejected("file_too_large", f"The file is {upload.size} bytes; the limit is {limit}.")
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise UploadRejected("file_too_large", f"The file is over the limit of {limit} bytes.")
    return data


def assets_upload(*, project: Project, user, files: Iterable[UploadedFile]) -> UploadResult:
    """Validate and store each file on its own: a bad file gets an error entry and
    leaves nothing behind; the good ones are stored. Videos are split later by a task."""
    result = UploadResult()
    for upload in files:
        name = os.path.basename(upload.name or "upload")
        try:
            data = _read_limited(upload, settings.TESSERA_MAX_UPLOAD_BYTES)
            if data and looks_like_video(name, data[:16]):
                result.videos.append(video_create(project=project, user=user, name=name, data=data))
                continue
            asset = asset_create_from_bytes(project=project, user=user, name=name, data=data)
        except UploadRejected as exc:
            result.errors.append({"file": name, "code": exc.code, "message": exc.message})
            continue
        except Duplicate as dup:
            result.duplicates.append({"file": name, **dup.existing})
            continue
        result.created.append(asset)
    _announce_new_assets(project=project, user=user, assets=result.created)
    return result


def _announce_new_assets(*, project: Project, user, assets: list[Asset]) -> None:
    """Tell the apps above (``signals.assets_created``) about new images: IntelliBrush
    computes their SAM embeddings ahead of time, so the first click is fast."""
    if not assets:
        return
    try:
        with transaction.atomic():  # a job row is not left behind when Redis fails first
            signals.assets_created.send(sender=Asset, project=project,
                                        asset_ids=[a.id for a in assets], user=user)
    except Exception as exc:
        if not is_redis_outage(exc):
            raise
        # The files and rows are in place; a click computes its embedding on demand.
        logger.warning("embedding precompute not queued (Redis unavailable): %s", exc)


class Duplicate(Exception):
    """The same bytes are in the project already; `existing` names what holds them."""

    def __init__(self, **existing: int) -> None:
        super().__init__(existing)
        self.existing = existing


def asset_create_from_bytes(*, project: Project, user, name: str, data: bytes,
                            video: Video | None = None, frame_index: int | None = None,
                            timestamp_s: float | None = None,
                            split: str = Asset.Split.TRAIN) -> Asset:
    """Check an image, store it and create its asset. Raises UploadRejected or Duplicate."""
    checked = check_image(
        data,
        max_bytes=settings.TESSERA_MAX_IMAGE_BYTES,
        max_pixels=settings.TESSERA_MAX_IMAGE_PIXELS,
        max_side=settings.TESSERA_MAX_IMAGE_SIDE,
    )
    sha256 = hashlib.sha256(checked.data).hexdigest()
    existing = Asset.objects.filter(project=project, sha256=sha256).values_list("id", flat=True).first()
    if existing:
        raise Duplicate(asset_id=existing)
    asset = Asset(project=project, name=name, sha256=sha256, width=checked.width,
                  height=checked.height, uploaded_by=user, video=video,
                  frame_index=frame_index, timestamp_s=timestamp_s, split=split)
    stem = os.path.splitext(name)[0][:80] or "image"
    try:
        with _stored(asset.file, f"{stem}{checked.extension}", checked.data), transaction.atomic():
            asset.save()
            _enqueue_thumbnail(asset.id)
    except IntegrityError:  # a concurrent upload of the same bytes won the race
        existing = Asset.objects.filter(project=project, sha256=sha256).values_list("id", flat=True).first()
        raise Duplicate(asset_id=existing) from None
    return asset


def _enqueue_thumbnail(asset_id: int) -> None:
    enqueue_on_commit("projects.tasks.asset_make_thumbnail", asset_id)


# The rows each task works on while they wait for it: (task, model, filter); each task
# takes the row's id. The sweep sends a task only for a row still waiting (a job or run
# still `queued`: no worker took it) with no queued mark, so work that was queued, or that
# a worker took, is not sent twice.
_WAITING: tuple[tuple[str, str, dict], ...] = (
    ("projects.tasks.asset_make_thumbnail", "projects.Asset", {"thumbnail": ""}),
    ("projects.tasks.video_split_frames", "projects.Video", {"status": "pending"}),
    ("projects.tasks.project_delete_execute", "projects.Job", {"kind": "project_delete", "status": "queued"}),
    ("annotator.tasks.dataset_import", "projects.Job", {"kind": "import", "status": "queued"}),
    ("annotator.tasks.dataset_export", "projects.Job", {"kind": "export", "status": "queued"}),
    ("deployments.tasks.artifact_report_run", "projects.Job", {"kind": "artifact_report", "status": "queued"}),
    ("deployments.tasks.artifact_prune_run", "projects.Job", {"kind": "artifact_prune", "status": "queued"}),
    ("deployments.tasks.artifact_export_build", "deployments.ArtifactExport",
     {"status": "building", "job__status": "queued"}),
    ("training.tasks.training_run_execute", "training.TrainingRun", {"status": "queued"}),
)


def queued_work_sweep(*, older_than_s: float, limit: int = 500) -> dict[str, int]:
    """Queue again the work whose enqueue failed (Redis was down when its row committed,
    see config.celery_app.enqueue_on_commit) or whose queue Redis lost: rows still waiting
    for their task after ``older_than_s`` and not marked as queued. Returns how many rows
    of each task were queued again. Celery beat runs it every ``TESSERA_REQUEUE_SWEEP_S``."""
    from django.apps import apps
    from django.core.cache import cache

    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    queued = {}
    for task, model, waiting in _WAITING:
        ids = list(apps.get_model(model).objects.filter(created_at__lt=cutoff, **waiting)
                   .order_by("id").values_list("id", flat=True)[:limit])
        marked = cache.get_many([queued_key(task, i) for i in ids])
        lost = [i for i in ids if queued_key(task, i) not in marked]
        for object_id in lost:
            enqueue_marked(task, object_id)
        if lost:
            queued[task] = len(lost)
    return queued


def asset_update(*, asset: Asset, user=None, data: dict) -> Asset:
    """Change one asset's split and/or status. A split chosen here is hand-placed
    (auto-split leaves it alone)."""
    for key, choices in (("status", Asset.Status.values), ("split", Asset.Split.values)):
        if key in data and data[key] not in choices:
            raise ApplicationError(f"{key} must be one of {choices}.", details={key: ["Invalid."]})
    assets_bulk_update(asset_ids=[asset.id], user=user, **data)
    asset.refresh_from_db()
    return asset


def assets_bulk_update(*, asset_ids: list[int], user=None, split: str | None = None,
                       status: str | None = None) -> int:
    """Move assets to ``split`` (marking them hand-placed) and/or set their ``status``
    (reviewed / rejected record who did it). Returns how many assets changed."""
    if status == Asset.Status.REJECTED:
        raise ApplicationError("A rejection needs a comment: reject assets one at a time "
                               "(POST /assets/{id}/review/).", code="comment_required")
    if status == Asset.Status.REVIEWED:
        unlabeled = sum(Asset.objects.filter(id__in=asset_ids[i:i + _CHUNK], mask_set__isnull=True)
                        .count() for i in range(0, len(asset_ids), _CHUNK))
        if unlabeled:
            raise ApplicationError(f"{unlabeled} of these assets have no masks: only labelled assets "
                                   "can be marked reviewed.", code="not_labeled", status_code=409)
    fields: dict = {"updated_at": timezone.now()}
    if split is not None:
        fields.update(split=split, split_locked=True)
    if status is not None:
        fields["status"] = status
        if status in (Asset.Status.REVIEWED, Asset.Status.REJECTED):
            fields.update(reviewed_by=_user_or_none(user), reviewed_at=fields["updated_at"])
    count = 0
    with transaction.atomic():
        for start in range(0, len(asset_ids), _CHUNK):
            count += Asset.objects.filter(id__in=asset_ids[start:start + _CHUNK]).update(**fields)
    return count


_CHUNK = 500


def _user_or_none(user):
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def asset_delete(*, asset: Asset) -> None:
    assets_delete(asset_ids=[asset.id])


def assets_delete(*, asset_ids: list[int]) -> int:
    """Delete assets with their masks and revisions (rows, by cascade) and, once that
    commits, their image files and thumbnails in storage (and, told by
    ``signals.assets_deleted``, IntelliBrush its SAM embeddings)."""
    deleted = 0
    for start in range(0, len(asset_ids), _CHUNK):
        rows = list(Asset.objects.filter(id__in=asset_ids[start:start + _CHUNK])
                    .values_list("id", "file", "thumbnail"))
        with transaction.atomic():
            Asset.objects.filter(id__in=[pk for pk, _, _ in rows]).delete()
            transaction.on_commit(lambda rows=rows: _asset_files_remove(rows))
        deleted += len(rows)
    return deleted


def _asset_files_remove(rows: list[tuple[int, str, str]]) -> None:
    from django.core.files.storage import default_storage

    for _, *names in rows:
        for name in names:
            if name:
                default_storage.delete(name)
    signals.assets_deleted.send(sender=Asset, asset_ids=[asset_id for asset_id, _, _ in rows])


# --- splits ----------------------------------------------------------------------------
def assets_auto_split(*, project: Project, ratios: dict[str, float], seed: int = 0,
                      include_locked: bool = False) -> dict:
    """Deal the project's assets into train/val/test by ``ratios`` (normalised), the
    same way for the same seed. Stratified by class presence: assets are grouped by the
    set of classes their masks contain (unlabelled ones form a group of their own) and
    each group is dealt in turn, so every split gets its share of each group. Hand-placed
    assets keep their split unless ``include_locked``; the assets dealt here are marked
    auto-placed. Returns {"moved", "kept_locked", "assigned": {split: n}}."""
    import random
    from collections import defaultdict

    total = sum(ratios.get(s, 0.0) for s in Asset.Split.values)
    if total <= 0 or any(ratios.get(s, 0.0) < 0 for s in Asset.Split.values):
        raise ApplicationError("Ratios must be zero or more and not all zero.",
                               code="invalid_ratios", details={"ratios": ["Invalid."]})
    weights = {s: ratios.get(s, 0.0) / total for s in Asset.Split.values}
    qs = Asset.objects.filter(project=project)
    kept_locked = 0 if include_locked else qs.filter(split_locked=True).count()
    if not include_locked:
        qs = qs.filter(split_locked=False)
    groups: dict[tuple, list[int]] = defaultdict(list)
    for pk, instances in qs.values_list("id", "mask_set__revision__instances").iterator(chunk_size=500):
        classes = tuple(sorted({i["class_id"] for i in instances})) if instances is not None else None
        groups[(classes is not None, classes or ())].append(pk)
    rng = random.Random(seed)
    plan: dict[str, list[int]] = {s: [] for s in Asset.Split.values}
    dealt = 0
    for key in sorted(groups):
        ids = sorted(groups[key])
        rng.shuffle(ids)
        for pk in ids:
            dealt += 1
            # the split furthest below its share so far (ties: train, val, test)
            split = max(Asset.Split.values, key=lambda s: weights[s] * dealt - len(plan[s]))
            plan[split].append(pk)
    moved = 0
    with transaction.atomic():
        for split, ids in plan.items():
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start:start + _CHUNK]
                moved += (Asset.objects.filter(id__in=chunk).exclude(split=split)
                          .update(split=split, updated_at=timezone.now()))
                Asset.objects.filter(id__in=chunk).update(split_locked=False)
    return {"moved": moved, "kept_locked": kept_locked,
            "assigned": {s: len(ids) for s, ids in plan.items()}}


# --- review and who has an asset open ----------------------------------------------------
@transaction.atomic
def asset_review(*, asset: Asset, user, decision: str, comment: str = "") -> Asset:
    """Accept (``reviewed``) or send back (``rejected``, a comment is required) a
    labelled asset."""
    if decision not in (Asset.Status.REVIEWED, Asset.Status.REJECTED):
        raise ApplicationError("decision must be 'reviewed' or 'rejected'.",
                               details={"decision": ["Invalid."]})
    comment = comment.strip()
    if decision == Asset.Status.REJECTED and not comment:
        raise ApplicationError("Say what to fix: a rejection needs a comment.",
                               code="comment_required", details={"comment": ["Required."]})
    asset = Asset.objects.select_for_update().get(pk=asset.pk)
    if not hasattr(asset, "mask_set") or asset.status in (Asset.Status.UNLABELED,
                                                          Asset.Status.IN_PROGRESS):
        raise ApplicationError("Only a labelled asset can be reviewed; this one is "
                               f"{asset.status.replace('_', ' ')}.", code="not_labeled",
                               status_code=409)
    asset.status, asset.review_comment = decision, comment
    asset.reviewed_by, asset.reviewed_at = _user_or_none(user), timezone.now()
    asset.save(update_fields=["status", "review_comment", "reviewed_by", "reviewed_at",
                              "updated_at"])
    return asset


def asset_open_mark(*, asset: Asset, user) -> bool:
    """Heartbeat: mark the asset open by ``user`` for TESSERA_ASSET_OPEN_TTL_S. Returns
    False (and changes nothing) when someone else has it open."""
    from django.core.cache import cache

    from projects.selectors import asset_open_key

    key, ttl = asset_open_key(asset.id), settings.TESSERA_ASSET_OPEN_TTL_S
    if cache.add(key, user.pk, timeout=ttl):
        return True
    if cache.get(key) != user.pk:
        return False
    cache.touch(key, ttl)
    return True


def asset_open_release(*, asset: Asset, user) -> None:
    from django.core.cache import cache

    from projects.selectors import asset_open_key

    if cache.get(asset_open_key(asset.id)) == user.pk:
        cache.delete(asset_open_key(asset.id))


def asset_next(*, project: Project, user, purpose: str, after_id: int = 0) -> Asset | None:
    """The next asset to label or review that nobody else has open, marked open by
    ``user`` (an unlabelled one becomes in progress): the first after ``after_id``, then
    from the start. None when there is none."""
    from projects.selectors import asset_next_candidates, asset_open_by

    for batch in asset_next_candidates(project=project, purpose=purpose, after_id=after_id):
        taken = asset_open_by(asset_ids=[a.id for a in batch])
        for asset in batch:
            if taken.get(asset.id, user.pk) != user.pk or not asset_open_mark(asset=asset, user=user):
                continue
            if asset.status == Asset.Status.UNLABELED and purpose == "label":
                Asset.objects.filter(pk=asset.pk).update(status=Asset.Status.IN_PROGRESS,
                                                         updated_at=timezone.now())
                asset.status = Asset.Status.IN_PROGRESS
            return asset
    return None


def asset_make_thumbnail(*, asset: Asset, size: int = 256) -> None:
    from io import BytesIO

    from PIL import Image

    with asset.file.open("rb") as fh:
        image = Image.open(fh)
        image.thumbnail((size, size))
        out = BytesIO()
        image.convert("RGB").save(out, format="JPEG", quality=85)
    previous = Asset.objects.filter(pk=asset.pk).values_list("thumbnail", flat=True).first()
    asset.thumbnail.save(f"{asset.pk}.jpg", ContentFile(out.getvalue()), save=False)
    new, storage = asset.thumbnail.name, asset.thumbnail.storage
    # Leave no file that nothing names: the asset was deleted meanwhile, or had one already.
    if not Asset.objects.filter(pk=asset.pk).update(thumbnail=new):
        storage.delete(new)
    elif previous and previous != new:
        storage.delete(previous)


# --- videos --------------------------------------------------------------------------
def video_create(*, project: Project, user, name: str, data: bytes) -> Video:
    from projects.media import probe_video

    info = probe_video(data)  # raises UploadRejected for unreadable containers
    sha256 = hashlib.sha256(data).hexdigest()
    existing = Video.objects.filter(project=project, sha256=sha256).values_list("id", flat=True).first()
    if existing:
        raise Duplicate(video_id=existing)
    video = Video(project=project, name=name, sha256=sha256, uploaded_by=user,
                  fps=info.fps, duration_s=info.duration_s)
    with _stored(video.file, name, data), transaction.atomic():
        video.save()
        enqueue_on_commit("projects.tasks.video_split_frames", video.id)
    return video


def video_split(*, video: Video) -> None:
    """Decode the video and turn sampled frames into assets that know their time."""
    from projects.media import iter_video_frames

    Video.objects.filter(pk=video.pk).update(status=Video.Status.PROCESSING, progress=0.0)
    created: list[Asset] = []
    try:
        with video.file.open("rb") as fh:
            for frame in iter_video_frames(fh, fps=settings.TESSERA_VIDEO_FPS,
                                           max_frames=settings.TESSERA_MAX_VIDEO_FRAMES):
                stem = os.path.splitext(video.name)[0][:60]
                try:
                    created.append(asset_create_from_bytes(
                        project=video.project, user=video.uploaded_by,
                        name=f"{stem}_f{frame.index:06d}.jpg", data=frame.jpeg,
                        video=video, frame_index=frame.index, timestamp_s=frame.timestamp_s,
                    ))
                except Duplicate:
                    pass  # identical frames (a still scene) are kept once
                Video.objects.filter(pk=video.pk).update(progress=frame.progress,
                                                         frame_count=len(created))
    except Exception as exc:  # noqa: BLE001 - any decoder failure is reported on the video
        Video.objects.filter(pk=video.pk).update(status=Video.Status.FAILED, error=str(exc)[:2000])
        raise
    Video.objects.filter(pk=video.pk).update(status=Video.Status.DONE, progress=1.0,
                                             frame_count=len(created))
    _announce_new_assets(project=video.project, user=video.uploaded_by, assets=created)


# --- jobs ----------------------------------------------------------------------------
def job_create(*, project: Project, user, kind: str, params: dict | None = None) -> Job:
    return Job.objects.create(project=project, created_by=user, kind=kind, params=params or {})


ACTIVE_JOB_STATUSES = (Job.Status.QUEUED, Job.Status.RUNNING)


def job_progress(*, job_id: int, progress: float, message: str = "") -> bool:
    """Record progress; False when the job is over already (cancelled): stop then."""
    return bool(Job.objects.filter(pk=job_id, status__in=ACTIVE_JOB_STATUSES).update(
        status=Job.Status.RUNNING, progress=progress, message=message[:500]))


def job_attempt(*, job_id: int, max_attempts: int, crashed_message: str) -> Job | None:
    """Count one more start of a job's task and return the job, or None when it must not
    run: it is over (finished or cancelled), or its task already started ``max_attempts``
    times. A start that never finished killed its worker (tasks are acks_late and
    reject_on_worker_lost, so the broker hands them out again); the job then fails with
    ``crashed_message`` and the task ends, acknowledged, instead of looping forever."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status not in ACTIVE_JOB_STATUSES:
            return None
        attempts = int(job.params.get("attempts", 0))
        if attempts >= max_attempts:
            job.status, job.progress, job.finished_at = Job.Status.FAILED, 1.0, timezone.now()
            job.errors = [{"code": "worker_crashed", "message": crashed_message, "where": ""}]
            job.message = crashed_message[:500]
            job.save(update_fields=["status", "progress", "finished_at", "errors", "message"])
            return None
        job.params = {**job.params, "attempts": attempts + 1}
        job.status = Job.Status.RUNNING
        job.save(update_fields=["params", "status"])
        return job


def job_cancel(*, job: Job, user) -> Job:
    """Cancel a queued or running job (a stuck one included): it fails with a
    "cancelled" error; its task, if it still runs, stops at its next progress step
    without writing anything, and a redelivered task does not start."""
    name = getattr(user, "username", "") or "a user"
    updated = Job.objects.filter(pk=job.pk, status__in=ACTIVE_JOB_STATUSES).update(
        status=Job.Status.FAILED, finished_at=timezone.now(), message=f"Cancelled by {name}.",
        errors=[{"code": "cancelled", "message": f"Cancelled by {name}; nothing was changed.",
                 "where": ""}])
    if not updated:
        raise ApplicationError(f"The job is {Job.objects.get(pk=job.pk).status} already; "
                               "only a queued or running job can be cancelled.",
                               code="job_finished", status_code=409)
    job.refresh_from_db()
    return job


def job_finish(*, job_id: int, result: dict | None = None, errors: list | None = None,
               message: str = "") -> None:
    Job.objects.filter(pk=job_id).update(
        status=Job.Status.FAILED if errors else Job.Status.SUCCEEDED,
        progress=1.0, result=result or {}, errors=errors or [], message=message[:500],
        finished_at=timezone.now(),
    )
