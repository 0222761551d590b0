"""Reads of masks: the current set, revisions, derived semantic maps and the data an
export walks through."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from django.db.models import QuerySet

from annotator.formats.dataset import ExportClass
from annotator.formats.semantic import semantic_map
from annotator.models import MaskRevision, MaskSet
from common.errors import NotFoundError
from projects.models import Asset, LabelClass, Project


def mask_set_get(*, asset: Asset) -> MaskSet | None:
    return (MaskSet.objects.select_related("revision", "updated_by")
            .filter(asset=asset).first())


def mask_revision_list(*, asset: Asset) -> QuerySet[MaskRevision]:
    return (MaskRevision.objects.filter(asset=asset).select_related("created_by")
            .defer("instances").order_by("-number"))


def mask_revision_get(*, asset: Asset, revision_id: int) -> MaskRevision:
    revision = MaskRevision.objects.filter(asset=asset, pk=revision_id).select_related("created_by").first()
    if revision is None:
        raise NotFoundError("Revision not found.")
    return revision


IGNORE_LABEL = 255


def trainable_classes(*, project: Project) -> list[LabelClass]:
    """The classes a model learns, in label order (label = position + 1): every class
    but the ignore class."""
    return list(LabelClass.objects.filter(project=project, is_ignore=False).order_by("index"))


def class_labels(*, project: Project) -> dict[int, int]:
    """LabelClass id -> model label: the trainable classes in index order are 1, 2, ...
    (index + 1 while no class is missing), the ignore class is 255 (left out of
    training and evaluation)."""
    labels = {c.id: n + 1 for n, c in enumerate(trainable_classes(project=project))}
    labels.update({pk: IGNORE_LABEL for pk in LabelClass.objects.filter(
        project=project, is_ignore=True).values_list("id", flat=True)})
    return labels


def mask_semantic_map(*, asset: Asset, labels: dict[int, int] | None = None) -> np.ndarray | None:
    """The asset's class map (H, W) uint8 — 0 background, the class_labels label, 255 for
    the ignore class — under
    the shared overlap rule (annotator.formats.semantic), or None when unlabeled.
    Instances of deleted classes are left out. Pass ``labels`` (class_labels) when
    calling for many assets of one project."""
    mask_set = mask_set_get(asset=asset)
    if mask_set is None:
        return None
    labels = labels if labels is not None else class_labels(project=asset.project)
    pairs = [(labels[i["class_id"]], i["rle"]) for i in mask_set.revision.instances
             if i["class_id"] in labels]
    return semantic_map(pairs, asset.height, asset.width)


def mask_overlay_png(*, asset: Asset, size: int = 256) -> bytes | None:
    """The asset's class map in the class colours (semi-transparent, background clear)
    as a PNG that fits in ``size`` x ``size`` like its thumbnail; None when unlabelled."""
    from io import BytesIO

    from PIL import Image

    semantic = mask_semantic_map(asset=asset)
    if semantic is None:
        return None
    lut = np.zeros((256, 4), np.uint8)
    for index, color in LabelClass.objects.filter(project_id=asset.project_id).values_list("index", "color"):
        lut[index + 1] = (*bytes.fromhex(color.lstrip("#")), 150)
    scale = min(1.0, size / max(asset.width, asset.height))
    small = Image.fromarray(semantic).resize(
        (max(1, round(asset.width * scale)), max(1, round(asset.height * scale))), Image.NEAREST)
    out = BytesIO()
    Image.fromarray(lut[np.asarray(small)], "RGBA").save(out, format="PNG", optimize=True)
    return out.getvalue()


@dataclass
class ExportAsset:
    id: int
    name: str
    file: str  # storage name of the image
    width: int
    height: int
    split: str
    instances: list[tuple[int, dict]]  # (class index 0-based, rle)
    labeled: bool


def export_classes(*, project: Project) -> list[ExportClass]:
    return [ExportClass(index=c.index, name=c.name, color=c.color, ignore=c.is_ignore)
            for c in LabelClass.objects.filter(project=project).order_by("index")]


def export_assets(*, project: Project, include_unlabeled: bool = False,
                  chunk: int = 500) -> Iterator[ExportAsset]:
    """Assets in id order with their current instances: plain rows (no model objects),
    one query per ``chunk`` assets."""
    index_of = dict(LabelClass.objects.filter(project=project).values_list("id", "index"))
    qs = Asset.objects.filter(project=project).order_by("id")
    if not include_unlabeled:
        qs = qs.filter(mask_set__isnull=False)
    fields = ("id", "name", "file", "width", "height", "split", "mask_set__revision__instances")
    last_id = 0
    while True:
        page = list(qs.filter(id__gt=last_id).values_list(*fields)[:chunk])
        if not page:
            return
        for pk, name, file, width, height, split, stored in page:
            instances = [(index_of[i["class_id"]], i["rle"]) for i in stored or []
                         if i["class_id"] in index_of]
            yield ExportAsset(pk, name, file, width, height, split, instances, stored is not None)
        last_id = page[-1][0]


def project_export_count(*, project: Project, include_unlabeled: bool = False) -> int:
    qs = Asset.objects.filter(project=project)
    return qs.count() if include_unlabeled else qs.filter(mask_set__isnull=False).count()
