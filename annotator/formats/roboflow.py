"""COCO as Roboflow and Datature export it (Django-free).

Roboflow: ``<split>/_annotations.coco.json`` beside that split's images (``train/``,
``valid/``, ``test/``), ``file_name`` a base name; category ids from 0, where id 0 is a
root category named after the dataset (``supercategory: "none"``) that every real
class names as its ``supercategory`` and that no annotation uses. Datature: one COCO
file, images in sub-folders, category ids that need not be 1..N.

Reading is :func:`annotator.formats.coco.read_coco` (images found beside the file, by
path or by unique base name; any category ids), less the unused root categories, which
are no classes. Writing gives the Roboflow layout, root category included.
"""
from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from annotator.formats.coco import read_coco, write_coco
from annotator.formats.dataset import ExportClass, ExportImage, ParsedImport

ROOT_CATEGORY = "tessera-dataset"
_SPLIT_FOLDERS = {"train": "train", "val": "valid", "test": "test"}


def detect_roboflow(files: Mapping[str, bytes]) -> str | None:
    for path in files:
        if posixpath.basename(path) == "_annotations.coco.json":
            return f"{path}: Roboflow's COCO export (<split>/_annotations.coco.json)"
    for path in files:
        if path.lower().endswith(".json") and b'"supercategory": "none"' in files[path][:1_000_000].replace(
                b'"supercategory":"none"', b'"supercategory": "none"'):
            return f"{path}: COCO with a root 'none' supercategory (Roboflow / Datature)"
    return None


def _root_categories(doc: Any) -> set[str]:
    """Names of categories that only group others: named as a supercategory, used by
    no annotation, themselves under "none" or nothing."""
    if not isinstance(doc, dict) or not isinstance(doc.get("categories"), list):
        return set()
    cats = [c for c in doc["categories"] if isinstance(c, dict) and isinstance(c.get("name"), str)]
    used = {a.get("category_id") for a in doc.get("annotations") or [] if isinstance(a, dict)}
    parents = {c.get("supercategory") for c in cats}
    return {c["name"].strip() for c in cats
            if c["name"] in parents and c.get("id") not in used
            and c.get("supercategory") in (None, "", "none", c["name"])}


def read_roboflow(files: Mapping[str, bytes], *, crowd_as_ignore: bool = False) -> ParsedImport:
    parsed = read_coco(files, crowd_as_ignore=crowd_as_ignore)
    roots: set[str] = set()
    for path in files:
        if path.lower().endswith(".json"):
            try:
                roots |= _root_categories(json.loads(files[path].decode("utf-8-sig")))
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue  # read_coco reported it
    if roots:
        parsed.classes = [(name, color) for name, color in parsed.classes if name not in roots]
        parsed.warn("categories", f"root categories {sorted(roots)} group the classes and are "
                    "no classes themselves: left out")
    return parsed


def write_roboflow(images: Iterable[ExportImage], classes: Sequence[ExportClass]) -> Iterator[tuple[str, bytes]]:
    """``<train|valid|test>/_annotations.coco.json`` beside the images of the split."""
    by_split: dict[str, list[ExportImage]] = {}
    for image in images:
        folder = _SPLIT_FOLDERS.get(image.split, image.split)
        if image.data is not None:
            yield f"{folder}/{image.file_name}", image.data
            image.data = None
        by_split.setdefault(folder, []).append(image)
    for folder, split_images in sorted(by_split.items()):
        doc = write_coco(split_images, classes)
        for category in doc["categories"]:
            category["supercategory"] = ROOT_CATEGORY
        doc["categories"].insert(0, {"id": 0, "name": ROOT_CATEGORY, "supercategory": "none"})
        yield f"{folder}/_annotations.coco.json", json.dumps(doc).encode()
