"""Writes of masks (save, restore, seed) and dataset import/export.

Masks: every save checks the whole set first (class belongs to the project, RLE
decodes, RLE size = asset size) and then writes one revision, points the asset's mask
set at it and marks the asset labeled, all in one transaction.

Imports are all or nothing: the reader (annotator.formats) and the matching of images
to assets find every problem before anything is written; the write itself is one
transaction, and image files stored by it are removed again if it fails.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import posixpath
import re
import tempfile
import uuid
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from annotator import selectors
from annotator.formats import CROWD_FORMATS, EXPORT_FORMATS, FORMATS, READERS, WRITERS
from annotator.formats import rle as rlelib
from annotator.formats.coco import write_coco
from annotator.formats.dataset import (
    IGNORE_CLASS,
    ArchiveLimits,
    ExportImage,
    ParsedImport,
    Problem,
    ReadBudgetExceeded,
    UploadError,
    ZipFiles,
    open_upload,
    set_declared_limits,
)
from annotator.formats.labelme import write_labelme
from annotator.formats.png import classes_document, index_png_for, palette
from annotator.formats.registry import Detection
from annotator.models import MaskRevision, MaskSet
from annotator.sources import (
    S3Files,
    SourceError,
    materialize,
    prefetched,
    prefix_has_objects,
    s3_client,
)
from common.errors import ApplicationError
from config.celery_app import enqueue_on_commit
from projects import services as project_services
from projects.models import Asset, Job, LabelClass, Project
from projects.validation import UploadRejected, check_image

logger = logging.getLogger(__name__)
HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


# --- masks ---------------------------------------------------------------------------
def _check_masks(*, asset: Asset, masks: Any) -> list[dict]:
    """API-form masks -> canonical stored instances; raises ApplicationError listing
    every bad entry. Instances without any pixel are dropped."""
    if not isinstance(masks, list):
        raise ApplicationError("masks must be a list.", code="invalid_masks",
                               details={"masks": ["Expected a list."]})
    class_ids = set(LabelClass.objects.filter(project_id=asset.project_id).values_list("id", flat=True))
    errors: dict[str, list[str]] = {}
    instances = []
    for n, item in enumerate(masks):
        problems = []
        class_id = item.get("class_id") if isinstance(item, dict) else None
        if not isinstance(class_id, int) or isinstance(class_id, bool):
            problems.append("class_id must be an integer.")
        elif class_id not in class_ids:
            problems.append(f"Class {class_id} is not a class of this project.")
        rle = None
        try:
            rle = rlelib.normalize(item.get("rle") if isinstance(item, dict) else None,
                                   height=asset.height, width=asset.width)
        except rlelib.RLEError as exc:
            problems.append(f"rle: {exc}")
        if problems:
            errors[str(n)] = problems
        elif rlelib.area(rle) > 0:
            instances.append({"class_id": class_id, "rle": rle})
    if errors:
        raise ApplicationError(f"{len(errors)} of {len(masks)} masks are invalid; nothing was saved.",
                               code="invalid_masks", details={"masks": errors})
    return instances


@dataclass
class _Save:
    asset: Asset
    instances: list[dict]
    restored_from: int | None = None


def _write_mask_sets(saves: Sequence[_Save], *, user, source: str) -> list[MaskSet]:
    """Write a revision per save, point each asset's mask set at it and mark the assets
    labeled. Call inside a transaction; a few queries whatever the number of assets."""
    if not saves:
        return []
    now = timezone.now()
    asset_ids = [s.asset.id for s in saves]
    # Lock the assets so concurrent saves of one asset get distinct revision numbers.
    list(Asset.objects.select_for_update().filter(id__in=asset_ids).values_list("id", flat=True))
    last = dict(MaskRevision.objects.filter(asset_id__in=asset_ids).values("asset_id")
                .annotate(m=Max("number")).values_list("asset_id", "m"))
    user = user if user is not None and getattr(user, "is_authenticated", False) else None
    revisions = MaskRevision.objects.bulk_create([
        MaskRevision(asset_id=s.asset.id, number=last.get(s.asset.id, 0) + 1,
                     instances=s.instances, instance_count=len(s.instances), source=source,
                     restored_from=s.restored_from, created_by=user, created_at=now)
        for s in saves])
    existing = {m.asset_id: m for m in MaskSet.objects.filter(asset_id__in=asset_ids)}
    to_create, to_update = [], []
    for save, revision in zip(saves, revisions, strict=True):
        mask_set = existing.get(save.asset.id)
        if mask_set is None:
            mask_set = MaskSet(asset_id=save.asset.id)
            to_create.append(mask_set)
        else:
            to_update.append(mask_set)
        mask_set.revision, mask_set.updated_by, mask_set.updated_at = revision, user, now
    MaskSet.objects.bulk_create(to_create)
    MaskSet.objects.bulk_update(to_update, ["revision", "updated_by", "updated_at"])
    Asset.objects.filter(id__in=asset_ids).update(status=Asset.Status.LABELED, updated_at=now)
    for save in saves:
        save.asset.status = Asset.Status.LABELED
    return to_create + to_update


@transaction.atomic
def mask_set_replace(*, asset: Asset, user, masks: list[dict], base_revision: int | None = None,
                     source: str = MaskRevision.Source.EDIT) -> MaskSet:
    """Replace the asset's whole set of masks with ``masks`` (API form:
    ``[{"class_id", "rle": {"size": [H, W], "counts": str}}]``) as a new revision.

    ``base_revision``: the revision number the client edited; when another save came
    in between, nothing is written and a 409 error names the current revision."""
    instances = _check_masks(asset=asset, masks=masks)
    if base_revision is not None:
        current = (MaskSet.objects.select_for_update().filter(asset=asset)
                   .values_list("revision__number", flat=True).first())
        if current != (base_revision or None):
            raise ApplicationError(
                f"The masks changed since revision {base_revision}: the current revision is "
                f"{current}. Reload them and save again.", code="conflict", status_code=409,
                details={"current_revision": current})
    _write_mask_sets([_Save(asset, instances)], user=user, source=source)
    return selectors.mask_set_get(asset=asset)


@transaction.atomic
def mask_set_replace_from_arrays(*, asset: Asset, user,
                                 instances: Sequence[tuple[LabelClass, np.ndarray]],
                                 source: str = MaskRevision.Source.SEED) -> MaskSet:
    """Store in-memory masks: (LabelClass, bool (H, W) array) pairs, as a new revision."""
    for label_class, mask in instances:
        if label_class.project_id != asset.project_id:
            raise ApplicationError(f"Class {label_class.name!r} belongs to another project.")
        if mask.shape != (asset.height, asset.width):
            raise ApplicationError(f"A mask is {mask.shape} but the asset is "
                                   f"{(asset.height, asset.width)} (H, W).")
    masks = [{"class_id": label_class.id, "rle": rlelib.encode(mask)}
             for label_class, mask in instances]
    return mask_set_replace(asset=asset, user=user, masks=masks, source=source)


@transaction.atomic
def mask_revision_restore(*, asset: Asset, revision: MaskRevision, user) -> MaskSet:
    """Make an earlier revision current again, as a new revision (history is kept).
    Instances of classes deleted since then are left out."""
    class_ids = set(LabelClass.objects.filter(project_id=asset.project_id).values_list("id", flat=True))
    instances = [i for i in revision.instances if i["class_id"] in class_ids]
    _write_mask_sets([_Save(asset, instances, restored_from=revision.number)], user=user,
                     source=MaskRevision.Source.RESTORE)
    return selectors.mask_set_get(asset=asset)


# --- import ----------------------------------------------------------------------------
IMPORT_KIND = "import"
EXPORT_KIND = "export"


ON_ERROR = ("refuse", "skip")


class JobCancelled(Exception):
    """The job was cancelled while its task ran: stop, write nothing."""


def _apply_limits() -> ArchiveLimits:
    """The declared-size limits of label files are the upload limits; the archive limits
    come from TESSERA_IMPORT_*."""
    set_declared_limits(max_pixels=settings.TESSERA_MAX_IMAGE_PIXELS,
                        max_side=settings.TESSERA_MAX_IMAGE_SIDE)
    return ArchiveLimits(max_entries=settings.TESSERA_IMPORT_MAX_ENTRIES,
                         max_total_bytes=settings.TESSERA_IMPORT_MAX_TOTAL_BYTES,
                         max_member_bytes=settings.TESSERA_IMPORT_MAX_MEMBER_BYTES,
                         max_image_bytes=settings.TESSERA_MAX_IMAGE_BYTES,
                         max_ratio=settings.TESSERA_IMPORT_MAX_RATIO)


def import_start(*, project: Project, user, name: str, data: bytes | BinaryIO,
                 format: str | None = None, on_error: str = "refuse",
                 crowd_as_ignore: bool = False) -> Job:
    """Check the upload now (400 on failure), store it and queue the import job on the
    `default` queue. The job's result is the import report.

    A zip is only inspected here (its directory: member count, sizes, compression
    ratio); a few of its label files are inflated, within TESSERA_IMPORT_PEEK_BYTES, to
    detect the format. ``format`` None: the detected one. An explicit format the upload
    does not look like, when it looks like another, is a 400 naming that one.
    ``on_error="skip"`` imports what is sound and lists what was left out.
    ``crowd_as_ignore``: COCO crowd regions go to the project's ignore class."""
    if format is not None and format not in READERS:
        raise ApplicationError(f"Unknown import format {format!r}; use one of {sorted(READERS)}.",
                               details={"format": ["Invalid choice."]})
    if on_error not in ON_ERROR:
        raise ApplicationError(f"on_error is one of {list(ON_ERROR)}.", details={"on_error": ["Invalid choice."]})
    limits = _apply_limits()
    files = _open_upload_or_400(name, data, limits)
    detected = _detect_here(files)
    names = [d.name for d in detected or []]
    if format is None and detected == []:
        raise ApplicationError(
            f"This upload does not look like any format Tessera imports ({', '.join(READERS)}).",
            code="unknown_format", details={"problems": _quick_structure_check(None, files)})
    if format is not None and detected and format not in names:
        best = detected[0]
        raise ApplicationError(
            f"This upload looks like {best.title}, not {FORMATS.title(format)}: {best.reason}.",
            code="wrong_format", details={"format": [f"The upload looks like {best.name}."],
                                          "detected": best.as_dict()})
    if format is not None and detected == []:
        problems = _quick_structure_check(format, files)
        if problems:
            raise ApplicationError(f"The {format} upload is malformed; nothing was imported.",
                                   code="invalid_import", details={"problems": problems})
    chosen = format or (names[0] if names else None)
    if chosen is not None:
        _check_import_options(chosen, crowd_as_ignore)
    detection = next((d.as_dict() for d in detected or [] if d.name == chosen), None)
    if hasattr(data, "seek"):
        data.seek(0)
    path = default_storage.save(f"imports/{uuid.uuid4().hex}/{os.path.basename(name) or 'upload'}",
                                ContentFile(data) if isinstance(data, bytes) else File(data))
    with transaction.atomic():
        job = project_services.job_create(project=project, user=user, kind=IMPORT_KIND, params={
            "format": chosen, "format_given": format is not None, "detected": detection,
            "on_error": on_error, "name": name, "path": path, "crowd_as_ignore": crowd_as_ignore})
        enqueue_on_commit("annotator.tasks.dataset_import", job.id)
    return job


def _check_import_options(format: str, crowd_as_ignore: bool) -> None:
    if format not in READERS:
        raise ApplicationError(f"Unknown import format {format!r}; use one of {sorted(READERS)}.",
                               details={"format": ["Invalid choice."]})
    if crowd_as_ignore and format not in CROWD_FORMATS:
        raise ApplicationError(f"crowd_as_ignore applies to {', '.join(CROWD_FORMATS)} imports.",
                               details={"crowd_as_ignore": ["Not an option of this format."]})


def _s3_settings() -> dict:
    return {"endpoint_url": settings.TESSERA_IMPORT_S3_ENDPOINT_URL,
            "region": settings.TESSERA_IMPORT_S3_REGION,
            "access_key": settings.TESSERA_IMPORT_S3_ACCESS_KEY_ID,
            "secret_key": settings.TESSERA_IMPORT_S3_SECRET_ACCESS_KEY}


def _s3_files(bucket: str, prefix: str) -> S3Files:
    return S3Files.list(s3_client(**_s3_settings()), bucket, prefix,
                        max_objects=settings.TESSERA_IMPORT_S3_MAX_OBJECTS,
                        max_bytes=max(settings.TESSERA_MAX_IMAGE_BYTES, settings.TESSERA_MAX_UPLOAD_BYTES))


def import_start_s3(*, project: Project, user, bucket: str, prefix: str, format: str,
                    crowd_as_ignore: bool = False) -> Job:
    """Queue an import of the objects under ``prefix`` in ``bucket`` (S3 or MinIO, with
    the server's import credentials; only the buckets in TESSERA_IMPORT_S3_BUCKETS). The
    prefix is looked at now (400 when it cannot be or holds nothing); the job reads
    label files as the reader asks and images one at a time."""
    _check_import_options(format, crowd_as_ignore)
    if bucket not in settings.TESSERA_IMPORT_S3_BUCKETS:
        raise ApplicationError(f"Imports from bucket {bucket!r} are not enabled on this server.",
                               code="bucket_not_allowed", details={"bucket": ["Not an import bucket."]})
    try:
        found = prefix_has_objects(s3_client(**_s3_settings()), bucket, prefix)
    except SourceError as exc:
        raise ApplicationError(str(exc), code="invalid_import", details={"bucket": [str(exc)]}) from None
    if not found:
        raise ApplicationError(f"No objects under {prefix!r} in {bucket!r}.", code="empty_file",
                               details={"prefix": ["Nothing there."]})
    with transaction.atomic():
        job = project_services.job_create(project=project, user=user, kind=IMPORT_KIND, params={
            "format": format, "format_given": True, "source": "s3", "bucket": bucket,
            "prefix": prefix, "name": f"s3://{bucket}/{prefix}", "crowd_as_ignore": crowd_as_ignore})
        enqueue_on_commit("annotator.tasks.dataset_import", job.id)
    return job


def _detect_here(files: Mapping[str, bytes]) -> list[Detection] | None:
    """The formats the upload looks like, or None when finding out would inflate or parse
    more than TESSERA_IMPORT_PEEK_BYTES in the web process (the job detects it then)."""
    if not isinstance(files, ZipFiles) and sum(map(len, files.values())) > settings.TESSERA_IMPORT_PEEK_BYTES:
        return None
    try:
        return FORMATS.detect(files)
    except ReadBudgetExceeded:
        return None
    except UploadError as exc:
        raise ApplicationError(str(exc), code="invalid_import") from None


def _open_upload_or_400(name: str, data: bytes | BinaryIO, limits: ArchiveLimits) -> Mapping[str, bytes]:
    if not data or (not isinstance(data, bytes) and getattr(data, "size", 1) == 0):
        raise ApplicationError("The file is empty.", code="empty_file")
    try:
        return open_upload(name, data, limits=limits, budget=settings.TESSERA_IMPORT_PEEK_BYTES)
    except UploadError as exc:
        raise ApplicationError(str(exc), code="invalid_import") from None


def _quick_structure_check(format: str | None, files: Mapping[str, bytes]) -> list[dict]:
    """Cheap checks answered straight away: label files present, and a single uploaded
    JSON parses with the top-level keys of its format. Everything else is the job's."""
    if format == "png":
        if not any(posixpath.basename(p) == "classes.json" for p in files):
            return [Problem("no_classes", "A PNG import is a zip with classes.json and "
                            "masks/<split>/<name>.png.").as_dict()]
        return []
    if format not in ("coco", "labelme"):
        return []  # the other formats' readers say what is missing
    label_files = [p for p in files if p.lower().endswith(".json")]
    if not label_files:
        return [Problem("no_label_file", f"The upload holds no .json {format or 'label'} file.").as_dict()]
    if len(files) == 1:
        path = label_files[0]
        try:
            doc = json.loads(files[path].decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return [Problem("bad_json", f"Not valid JSON: {exc}.", path).as_dict()]
        keys = {"coco": ("images", "annotations", "categories"),
                "labelme": ("shapes", "imagePath", "imageHeight", "imageWidth")}.get(format, ())
        missing = [k for k in keys if not isinstance(doc, dict) or k not in doc]
        if missing:
            return [Problem("bad_structure", f"Missing keys: {', '.join(missing)}.", path).as_dict()]
    return []


@dataclass
class _Target:
    """Where an imported image goes: an existing asset or a new one made from bytes."""

    asset: Asset | None
    new_name: str = ""
    new_data: bytes = b""
    split: str = Asset.Split.TRAIN
    instances: list = field(default_factory=list)
    complete: bool = False
    source: str = ""


def _resolve(project: Project, parsed: ParsedImport,
             progress: Callable[[float], None]) -> list[_Target]:
    """Match every image to an asset (by content when the upload carries the bytes, by
    file name otherwise) and check sizes; problems are appended to ``parsed``."""
    assets = list(Asset.objects.filter(project=project).only("id", "name", "sha256", "width", "height", "status"))
    by_name: dict[str, list[Asset]] = defaultdict(list)
    by_stem: dict[str, list[Asset]] = defaultdict(list)
    by_sha = {a.sha256: a for a in assets}
    for a in assets:
        by_name[a.name].append(a)
        by_stem[os.path.splitext(a.name)[0]].append(a)
    targets: dict[Any, _Target] = {}
    total = max(len(parsed.images), 1)
    # images read lazily (S3) download a few ahead while the current one is checked
    datas = prefetched(image.data for image in parsed.images)
    for n, (image, data) in enumerate(zip(parsed.images, datas, strict=True)):
        if n % 10 == 0:
            progress(n / total)
        where = image.source
        if data is not None:
            try:
                checked = check_image(data, max_bytes=settings.TESSERA_MAX_IMAGE_BYTES,
                                      max_pixels=settings.TESSERA_MAX_IMAGE_PIXELS,
                                      max_side=settings.TESSERA_MAX_IMAGE_SIDE)
            except UploadRejected as exc:
                parsed.problem(exc.code, f"{image.file_name}: {exc.message}", where)
                continue
            size = (checked.width, checked.height)
            sha = hashlib.sha256(checked.data).hexdigest()
            asset = by_sha.get(sha)
            key = ("asset", asset.id) if asset else ("new", sha)
            target = _Target(asset=asset, new_name=posixpath.basename(image.file_name)[:255],
                             new_data=image.data, split=image.split or Asset.Split.TRAIN, source=where)
        else:
            name = posixpath.basename(image.file_name.replace("\\", "/"))
            matches = by_name.get(name) or by_stem.get(os.path.splitext(name)[0], [])
            if not matches:
                parsed.problem("unknown_image", f"No asset named {name!r} in the project, and the "
                               "upload does not carry the image.", where)
                continue
            if len(matches) > 1:
                parsed.problem("ambiguous_image", f"{len(matches)} assets are named {name!r}; "
                               "upload the images in a zip to match them by content.", where)
                continue
            asset = matches[0]
            size, key = (asset.width, asset.height), ("asset", asset.id)
            target = _Target(asset=asset, source=where)
        if size != (image.width, image.height):
            parsed.problem("size_mismatch", f"{image.file_name} is {size[0]}x{size[1]} but the "
                           f"labels are for {image.width}x{image.height}.", where)
            continue
        if key in targets:
            parsed.skip(where, f"{image.file_name} is already labeled by {targets[key].source}; "
                        "this duplicate was left out")
            continue
        target.instances, target.complete = image.instances, image.complete
        targets[key] = target
    return list(targets.values())


def import_run(*, job: Job) -> None:
    """The import job: read, check everything, then write everything or nothing (with
    on_error=skip: everything sound, and the report lists what was left out)."""
    params, project = job.params, job.project
    limits = _apply_limits()
    files: Any = None
    try:
        _progress(job, 0.02, "Reading the upload")
        with (nullcontext() if params.get("source") == "s3"
              else default_storage.open(params["path"], "rb")) as fh:
            try:
                if params.get("source") == "s3":
                    files = _s3_files(params["bucket"], params["prefix"])
                else:
                    files = open_upload(params.get("name", ""), fh, limits=limits)
                format, detection = params.get("format"), params.get("detected")
                if format is None:  # too large to detect in the web process
                    found = FORMATS.detect(files)
                    if not found:
                        _fail(job, Problem("unknown_format", "This upload does not look like any "
                                           f"format Tessera imports ({', '.join(READERS)})."))
                        return
                    format, detection = found[0].name, found[0].as_dict()
                _progress(job, 0.05, f"Reading {FORMATS.title(format)} labels")
                crowd = params.get("crowd_as_ignore") and format in CROWD_FORMATS
                parsed = READERS[format](files, **({"crowd_as_ignore": True} if crowd else {}))
            except (UploadError, SourceError) as exc:
                _fail(job, Problem("invalid_import", str(exc)))
                return
        _progress(job, 0.4, "Matching images to assets")
        skip = params.get("on_error") == "skip"
        if skip:
            parsed.images = [image for image in parsed.images if not image.failed]
        targets = _resolve(project, parsed, lambda f: _progress(job, 0.4 + 0.3 * f, "Matching images"))
        report = _report(parsed, targets, skip)
        report["format"] = {"name": format, "title": FORMATS.title(format),
                            "detected": not params.get("format_given", True),
                            "reason": (detection or {}).get("reason", "")}
        if parsed.problems and not skip:
            errors = [p.as_dict() for p in parsed.problems]
            project_services.job_finish(
                job_id=job.id, result=report, errors=errors,
                message=f"{len(errors)} problem{'s' if len(errors) != 1 else ''} found; nothing was imported.")
            return
        if not targets:
            project_services.job_finish(
                job_id=job.id, result=report, errors=[p.as_dict() for p in parsed.problems] or [
                    Problem("nothing_to_import", "The upload holds no image to import.").as_dict()],
                message="Nothing could be imported.")
            return
        _progress(job, 0.75, "Writing")
        report.update(_write_import(project, job.created_by, parsed, targets, job_id=job.id,
                                    progress=lambda f, m: _progress(job, 0.75 + 0.24 * f, m)))
        project_services.job_finish(job_id=job.id, result=report, message=(
            f"Imported {report['instances']} objects on {report['images']} images"
            f"{_counts_note(report['counts'])}."))
    finally:
        if params.get("path"):
            default_storage.delete(params["path"])
        if isinstance(files, S3Files):
            files.close()


def _counts_note(counts: dict) -> str:
    parts = [f"{counts[k]} {k.replace('_', ' ')}" for k in ("repaired", "skipped", "left_out") if counts[k]]
    return f" ({', '.join(parts)})" if parts else ""


def _fail(job: Job, problem: Problem) -> None:
    project_services.job_finish(job_id=job.id, errors=[problem.as_dict()],
                                message="The upload cannot be read; nothing was imported.")


def _progress(job: Job, fraction: float, message: str) -> None:
    if not project_services.job_progress(job_id=job.id, progress=round(fraction, 3), message=message):
        raise JobCancelled


def _report(parsed: ParsedImport, targets: list[_Target], skip: bool = False) -> dict:
    left_out = [p.as_dict() for p in parsed.problems] if skip else []
    return {
        "images": len(targets),
        "instances": sum(len(t.instances) for t in targets),
        "images_without_objects": sum(not t.instances for t in targets),
        "images_left_unlabeled": sum(not t.instances and not t.complete for t in targets),
        "assets_matched": sum(t.asset is not None for t in targets),
        "assets_to_create": sum(t.asset is None for t in targets),
        "classes": [name for name, _ in parsed.classes],
        "warnings": parsed.warnings,
        "skipped": parsed.skipped,
        "left_out": left_out,
        "counts": {"imported_images": len(targets),
                   "imported_objects": sum(len(t.instances) for t in targets),
                   "repaired": len(parsed.warnings), "skipped": len(parsed.skipped),
                   "left_out": len(left_out)},
    }


def _write_import(project: Project, user, parsed: ParsedImport, targets: list[_Target],
                  job_id: int | None = None,
                  progress: Callable[[float, str], None] | None = None) -> dict:
    """One transaction: classes, new assets, one mask revision per labeled image.
    Image files stored here are deleted again if the transaction does not commit. With
    ``job_id``, the job is locked and nothing is written if it was cancelled. Images read
    lazily (an S3 import) are downloaded here one at a time."""
    stored: list[str] = []
    try:
        with transaction.atomic():
            if job_id is not None and not Job.objects.select_for_update().filter(
                    pk=job_id, status=Job.Status.RUNNING).exists():
                raise JobCancelled
            classes = {c.name.lower(): c for c in LabelClass.objects.filter(project=project)}
            created_classes = []
            for name, color in parsed.classes:
                if name.lower() not in classes:
                    color = color if color and HEX_COLOR.match(color) else None
                    classes[name.lower()] = project_services.label_class_create(
                        project=project, name=name, color=color)
                    created_classes.append(name)
            if any(i.class_name == IGNORE_CLASS for t in targets for i in t.instances):
                ignore, created = _ignore_class(project, classes)
                classes[IGNORE_CLASS.lower()] = ignore
                created_classes += [ignore.name] if created else []
            created_assets = 0
            new = sum(t.asset is None for t in targets)
            for target in targets:
                if target.asset is None:
                    target.asset = project_services.asset_create_from_bytes(
                        project=project, user=user, name=target.new_name,
                        data=materialize(target.new_data), split=target.split)
                    target.new_data = b""
                    stored.append(target.asset.file.name)
                    created_assets += 1
                    if progress and (created_assets % 10 == 0 or created_assets == new):
                        progress(created_assets / new, f"Stored {created_assets} of {new} images")
            saves = [_Save(t.asset, [{"class_id": classes[i.class_name.lower()].id, "rle": i.rle}
                                     for i in t.instances])
                     for t in targets if t.instances or t.complete]
            _write_mask_sets(saves, user=user, source=MaskRevision.Source.IMPORT)
    except BaseException:
        for name in stored:
            default_storage.delete(name)
        raise
    return {"classes_created": created_classes, "assets_created": created_assets,
            "assets_labeled": len(saves)}


def _ignore_class(project: Project, classes: dict[str, LabelClass]) -> tuple[LabelClass, bool]:
    """The project's ignore class: the one flagged, else a class named ``__ignore__``
    (flagged now: an earlier import made it an ordinary class), else a new one."""
    for label_class in classes.values():
        if label_class.is_ignore:
            return label_class, False
    existing = classes.get(IGNORE_CLASS.lower())
    if existing is not None:
        project_services.label_class_update(label_class=existing, data={"is_ignore": True})
        return existing, False
    return project_services.label_class_create(project=project, name=IGNORE_CLASS, color="#ffffff",
                                               is_ignore=True), True


# --- export ----------------------------------------------------------------------------
_UNSAFE = re.compile(r"[^\w.\-]+")


def _export_name(asset: selectors.ExportAsset, taken: set[str]) -> str:
    """A file name for the asset that is unique in the archive, also by stem (so PNG
    masks named <stem>.png never collide)."""
    base = _UNSAFE.sub("_", posixpath.basename(asset.name)).strip("._") or "image"
    stem, ext = os.path.splitext(base)
    if not ext:
        ext = os.path.splitext(asset.file)[1] or ".png"
    name = f"{stem}{ext}"
    if stem.lower() in taken:
        stem = f"{asset.id}_{stem}"
        name = f"{stem}{ext}"
    taken.add(stem.lower())
    return name


def export_entries(*, project: Project, format: str, include_unlabeled: bool = False,
                   include_images: bool = True,
                   progress: Callable[[int, int], None] | None = None) -> Iterator[tuple[str, bytes]]:
    """The files of a dataset export, one (path in zip, bytes) at a time.

    coco:    annotations/instances_<split>.json, images/<split>/<file>
    labelme: <split>/<stem>.json beside <split>/<file>
    png:     classes.json, masks/<split>/<stem>.png, images/<split>/<file>
    others:  the layout of their writer (annotator.formats.WRITERS)
    """
    if format not in EXPORT_FORMATS:
        raise ApplicationError(f"Unknown export format {format!r}; use one of {list(EXPORT_FORMATS)}.",
                               details={"format": ["Invalid choice."]})
    classes = selectors.export_classes(project=project)
    if format in WRITERS:
        yield from WRITERS[format](_export_images(project, include_unlabeled, include_images, progress),
                                   classes)
        return
    total = selectors.project_export_count(project=project, include_unlabeled=include_unlabeled)
    colors = palette(classes)
    ignore_index = next((c.index for c in classes if c.ignore), None)
    by_split: dict[str, list[ExportImage]] = defaultdict(list)
    taken: set[str] = set()
    if format == "png":
        yield "classes.json", json.dumps(classes_document(classes), indent=1).encode()
    for n, asset in enumerate(selectors.export_assets(project=project,
                                                      include_unlabeled=include_unlabeled)):
        item = asset
        name = _export_name(asset, taken)
        data = _read_file(asset) if include_images else None
        image = ExportImage(file_name=name, width=asset.width, height=asset.height,
                            split=asset.split, instances=item.instances, data=data)
        stem = os.path.splitext(name)[0]
        if data is not None:
            folder = asset.split if format == "labelme" else f"images/{asset.split}"
            yield f"{folder}/{name}", data
        if format == "coco":
            image.data = None
            by_split[asset.split].append(image)
        elif format == "labelme":
            doc = write_labelme(image, classes, image_path=name)
            yield f"{asset.split}/{stem}.json", json.dumps(doc).encode()
        elif item.labeled:
            yield (f"masks/{asset.split}/{stem}.png",
                   index_png_for(item.instances, asset.height, asset.width, colors, ignore_index))
        if progress:
            progress(n + 1, total)
    if format == "coco":
        for split in sorted(by_split):
            doc = write_coco(by_split[split], classes)
            yield f"annotations/instances_{split}.json", json.dumps(doc).encode()


def _export_images(project: Project, include_unlabeled: bool, include_images: bool,
                   progress: Callable[[int, int], None] | None) -> Iterator[ExportImage]:
    """The project's images for a writer, one at a time (unique file names)."""
    total = selectors.project_export_count(project=project, include_unlabeled=include_unlabeled)
    taken: set[str] = set()
    for n, asset in enumerate(selectors.export_assets(project=project, include_unlabeled=include_unlabeled)):
        yield ExportImage(file_name=_export_name(asset, taken), width=asset.width, height=asset.height,
                          split=asset.split, instances=asset.instances,
                          data=_read_file(asset) if include_images else None)
        if progress:
            progress(n + 1, total)


def _read_file(asset: selectors.ExportAsset) -> bytes:
    with default_storage.open(asset.file, "rb") as fh:
        return fh.read()


class _Sink(io.RawIOBase):
    """A write-only, unseekable stream whose bytes are taken out in pieces."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.parts.append(bytes(b))
        return len(b)

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def _compression(path: str) -> dict:
    # Images and PNG masks are compressed already: deflating them again costs CPU for
    # nothing. JSON gets the fastest deflate level (RLE strings barely compress further).
    if path.endswith(".json"):
        return {"compress_type": zipfile.ZIP_DEFLATED, "compresslevel": 1}
    return {"compress_type": zipfile.ZIP_STORED}


def export_stream(**kwargs: Any) -> Iterator[bytes]:
    """The export zip as a stream of byte chunks (one per file): memory holds one file
    at a time, and the first bytes leave before the last image is read."""
    entries = export_entries(**kwargs)
    first = next(entries, None)  # raise format errors before the response starts
    sink = _Sink()

    def chunks() -> Iterator[bytes]:
        with zipfile.ZipFile(sink, "w") as archive:
            for path, data in ([first] if first else []):
                archive.writestr(path, data, **_compression(path))
            yield sink.take()
            for path, data in entries:
                archive.writestr(path, data, **_compression(path))
                yield sink.take()
        yield sink.take()

    return chunks()


def export_write(*, out: BinaryIO, **kwargs: Any) -> int:
    """Write the export zip to a file object; returns the number of entries."""
    count = 0
    with zipfile.ZipFile(out, "w") as archive:
        for path, data in export_entries(**kwargs):
            archive.writestr(path, data, **_compression(path))
            count += 1
    return count


def export_start(*, project: Project, user, format: str, include_unlabeled: bool = False,
                 include_images: bool = True) -> Job:
    """Queue an export job; its zip becomes the job's file (/api/v1/jobs/{id}/download/)."""
    if format not in EXPORT_FORMATS:
        raise ApplicationError(f"Unknown export format {format!r}; use one of {list(EXPORT_FORMATS)}.",
                               details={"format": ["Invalid choice."]})
    with transaction.atomic():
        job = project_services.job_create(project=project, user=user, kind=EXPORT_KIND, params={
            "format": format, "include_unlabeled": include_unlabeled, "include_images": include_images})
        enqueue_on_commit("annotator.tasks.dataset_export", job.id)
    return job


def export_run(*, job: Job) -> None:
    project, params = job.project, job.params

    def progress(done: int, total: int) -> None:
        if done % 25 == 0 or done == total:
            _progress(job, 0.95 * done / max(total, 1), f"{done} of {total} images")

    with tempfile.TemporaryFile() as fh:
        entries = export_write(out=fh, project=project, format=params["format"],
                               include_unlabeled=params.get("include_unlabeled", False),
                               include_images=params.get("include_images", True), progress=progress)
        fh.seek(0)
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        job.file.save(f"project{project.id}-{params['format']}-{stamp}.zip", File(fh), save=False)
    Job.objects.filter(pk=job.id).update(file=job.file.name)
    project_services.job_finish(job_id=job.id, result={"entries": entries, "format": params["format"]},
                                message="Export ready.")
