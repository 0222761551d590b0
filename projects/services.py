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


def project_delete(*, project: Project) -> None:
    project.delete()


@transaction.atomic
def member_set(*, project: Project, username: str, role: str) -> Membership:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ApplicationError(f"No user named {username!r}.", code="unknown_user")
    if role not in Role.values:
        raise ApplicationError(f"Unknown role {role!r}; use one of {Role.values}.")
    membership, _ = Membership.objects.select_for_update().update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    _ensure_an_owner_remains(project)
    return membership


@transaction.atomic
def member_remove(*, membership: Membership) -> None:
    project = membership.project
    membership.delete()
    _ensure_an_owner_remains(project)


def _ensure_an_owner_remains(project: Project) -> None:
    if not Membership.objects.filter(project=project, role=Role.OWNER).exists():
        raise ApplicationError("A project must keep at least one owner.", code="last_owner")


# --- label classes -------------------------------------------------------------------
def _check_color(color: str) -> str:
    if not HEX_COLOR.match(color or ""):
        raise ApplicationError(f"Colour must look like #rrggbb, got {color!r}.",
                               details={"color": ["Use #rrggbb."]})
    return color.lower()


@transaction.atomic
def label_class_create(*, project: Project, name: str, color: str | None = None) -> LabelClass:
    # Lock the project row so two concurrent creates cannot take the same index.
    Project.objects.select_for_update().filter(pk=project.pk).first()
    name = name.strip()
    if not name:
        raise ApplicationError("A class needs a name.", details={"name": ["Required."]})
    if LabelClass.objects.filter(project=project, name__iexact=name).exists():
        raise ApplicationError(f"A class named {name!r} exists already.", code="duplicate",
                               details={"name": ["Already used in this project."]})
    last = LabelClass.objects.filter(project=project).aggregate(m=Max("index"))["m"]
    index = 0 if last is None else last + 1
    color = _check_color(color) if color else DEFAULT_PALETTE[index % len(DEFAULT_PALETTE)]
    return LabelClass.objects.create(project=project, name=name, color=color, index=index)


def label_class_update(*, label_class: LabelClass, data: dict) -> LabelClass:
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
    _precompute_embeddings(project=project, user=user, assets=result.created)
    return result


def _precompute_embeddings(*, project: Project, user, assets: list[Asset]) -> None:
    """New images get their SAM embeddings ahead of time, so the first click is fast."""
    from annotator.intellibrush.services import embeddings_for_new_assets

    try:
        with transaction.atomic():  # a job row is not left behind when Redis fails first
            embeddings_for_new_assets(project=project, asset_ids=[a.id for a in assets], user=user)
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
            # robust: a Redis outage is logged, not raised; the sweep queues it later.
            transaction.on_commit(lambda: _enqueue_thumbnail(asset.id), robust=True)
    except IntegrityError:  # a concurrent upload of the same bytes won the race
        existing = Asset.objects.filter(project=project, sha256=sha256).values_list("id", flat=True).first()
        raise Duplicate(asset_id=existing) from None
    return asset


# Work that was handed to the broker is marked in Redis for a while: the sweep queues
# again only what has no mark (the enqueue failed, or Redis lost its queues with it), not
# what merely waits behind a long queue.
_QUEUED_TTL_S = 6 * 3600


def _queued_key(kind: str, object_id: int) -> str:
    return f"projects:queued:{kind}:{object_id}"


def _enqueue_thumbnail(asset_id: int) -> None:
    from django.core.cache import cache

    from projects.tasks import asset_make_thumbnail

    asset_make_thumbnail.delay(asset_id)
    cache.set(_queued_key("thumbnail", asset_id), 1, _QUEUED_TTL_S)


def _not_queued(kind: str, ids: list[int]) -> list[int]:
    from django.core.cache import cache

    marked = cache.get_many([_queued_key(kind, i) for i in ids])
    return [i for i in ids if _queued_key(kind, i) not in marked]


def media_sweep(*, older_than_s: float, limit: int = 500) -> dict[str, int]:
    """Queue again the work an upload could not queue (Redis was down when it committed):
    thumbnails of assets that still have none and splits of videos still pending, older
    than ``older_than_s`` and not marked as queued. Both tasks are idempotent. The
    default workers run this every ``TESSERA_MEDIA_SWEEP_S`` (projects.tasks)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    asset_ids = _not_queued("thumbnail", list(
        Asset.objects.filter(thumbnail="", created_at__lt=cutoff)
        .order_by("id").values_list("id", flat=True)[:limit]))
    video_ids = _not_queued("video", list(
        Video.objects.filter(status=Video.Status.PENDING, created_at__lt=cutoff)
        .order_by("id").values_list("id", flat=True)[:limit]))
    for asset_id in asset_ids:
        _enqueue_thumbnail(asset_id)
    for video_id in video_ids:
        _enqueue_video_split(video_id)
    return {"thumbnails": len(asset_ids), "videos": len(video_ids)}


def asset_update(*, asset: Asset, data: dict) -> Asset:
    for key, choices in (("status", Asset.Status.values), ("split", Asset.Split.values)):
        if key in data:
            if data[key] not in choices:
                raise ApplicationError(f"{key} must be one of {choices}.", details={key: ["Invalid."]})
            setattr(asset, key, data[key])
    asset.save(update_fields=["status", "split", "updated_at"])
    return asset


def asset_delete(*, asset: Asset) -> None:
    from annotator.intellibrush.services import embeddings_delete_for_asset

    names = [f.name for f in (asset.file, asset.thumbnail) if f]
    storage, asset_id = asset.file.storage, asset.id

    def remove_files() -> None:
        for name in names:
            storage.delete(name)
        embeddings_delete_for_asset(asset_id=asset_id)

    with transaction.atomic():
        asset.delete()
        transaction.on_commit(remove_files)


def asset_make_thumbnail(*, asset: Asset, size: int = 256) -> None:
    from io import BytesIO

    from PIL import Image

    with asset.file.open("rb") as fh:
        image = Image.open(fh)
        image.thumbnail((size, size))
        out = BytesIO()
        image.convert("RGB").save(out, format="JPEG", quality=85)
    asset.thumbnail.save(f"{asset.pk}.jpg", ContentFile(out.getvalue()), save=False)
    Asset.objects.filter(pk=asset.pk).update(thumbnail=asset.thumbnail.name)


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
        transaction.on_commit(lambda: _enqueue_video_split(video.id), robust=True)
    return video


def _enqueue_video_split(video_id: int) -> None:
    from django.core.cache import cache

    from projects.tasks import video_split_frames

    video_split_frames.delay(video_id)
    cache.set(_queued_key("video", video_id), 1, _QUEUED_TTL_S)


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
    _precompute_embeddings(project=video.project, user=video.uploaded_by, assets=created)


# --- jobs ----------------------------------------------------------------------------
def job_create(*, project: Project, user, kind: str, params: dict | None = None) -> Job:
    return Job.objects.create(project=project, created_by=user, kind=kind, params=params or {})


def job_progress(*, job_id: int, progress: float, message: str = "") -> None:
    Job.objects.filter(pk=job_id).update(status=Job.Status.RUNNING, progress=progress,
                                         message=message[:500])


def job_finish(*, job_id: int, result: dict | None = None, errors: list | None = None,
               message: str = "") -> None:
    Job.objects.filter(pk=job_id).update(
        status=Job.Status.FAILED if errors else Job.Status.SUCCEEDED,
        progress=1.0, result=result or {}, errors=errors or [], message=message[:500],
        finished_at=timezone.now(),
    )
