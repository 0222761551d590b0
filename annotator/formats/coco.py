"""COCO instance segmentation files ("COCO Mask"): reading and writing. Django-free.

Read: ``images`` (id, file_name, width, height), ``categories`` (id, name; an optional
``color`` "#rrggbb" is kept), ``annotations`` whose ``segmentation`` is
  * a list of polygons ``[[x1, y1, x2, y2, ...], ...]`` (one or many per object),
  * an uncompressed RLE ``{"size": [H, W], "counts": [int, ...]}`` (usual with iscrowd=1),
  * a compressed RLE ``{"size": [H, W], "counts": "<string>"}``.
Polygons are rasterized exactly as pycocotools does (``frPyObjects``). Annotations
without a segmentation (boxes only) or with an empty mask are skipped and reported.

Crowd regions (``iscrowd: 1``) are ordinary objects, or ignore regions when the import
asks (``crowd_as_ignore``).

Write: one file per split, every instance as a compressed RLE with ``iscrowd: 0``
(``iscrowd: 1`` for the ignore class's regions),
``area`` and ``bbox`` computed from the mask, category ids = class index + 1.
"""
from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from annotator.formats import rle as rlelib
from annotator.formats.dataset import (
    IGNORE_CLASS,
    ExportClass,
    ExportImage,
    FileIndex,
    ImportImage,
    ImportInstance,
    ParsedImport,
    clip_points,
    clipped_message,
    declared_size_ok,
    degenerate_polygon,
    is_number,
    json_documents,
    load_json,
    points_ok,
    split_from_path,
    wholly_outside,
)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_coco(files: Mapping[str, bytes], *, crowd_as_ignore: bool = False) -> ParsedImport:
    """Read every ``.json`` of the upload as a COCO file; other files are image candidates.
    ``crowd_as_ignore``: ``iscrowd: 1`` regions go to the project's ignore class."""
    parsed = ParsedImport()
    index = FileIndex(files)
    label_files = sorted(p for p in files if p.lower().endswith(".json"))
    if not label_files:
        parsed.problem("no_label_file", "The upload holds no .json COCO file.")
    for path in label_files:
        doc = load_json(files[path], path, parsed)
        if doc is not None:
            _read_document(doc, path, index, parsed, crowd_as_ignore)
    seen: dict[str, str] = {}
    kept = []
    for image in parsed.images:
        key = image.file_name
        if key in seen:
            parsed.skip(image.source, f"{key!r} is already listed at {seen[key]}; this duplicate "
                        "and its annotations were left out")
            continue
        seen[key] = image.source
        kept.append(image)
    parsed.images = kept
    return parsed


def detect_coco(files: Mapping[str, bytes]) -> str | None:
    """A COCO upload: a .json object with the lists images, annotations and categories."""
    for path, doc in json_documents(files):
        if isinstance(doc, dict) and all(isinstance(doc.get(k), list)
                                         for k in ("images", "annotations", "categories")):
            return f"{path} has the lists 'images', 'annotations' and 'categories' of COCO"
    return None


def _read_document(doc: Any, path: str, index: FileIndex, parsed: ParsedImport,
                   crowd_as_ignore: bool = False) -> None:
    if not isinstance(doc, dict):
        parsed.problem("bad_structure", "A COCO file is a JSON object.", path)
        return
    missing = [k for k in ("images", "annotations", "categories") if not isinstance(doc.get(k), list)]
    if missing:
        parsed.problem("bad_structure", f"Missing or not a list: {', '.join(missing)}.", path)
        return
    split = split_from_path(posixpath.basename(path))
    categories = _read_categories(doc["categories"], path, parsed)
    refused: set[int] = set()
    images = _read_images(doc["images"], path, index, split, parsed, refused)
    crowd = 0
    for n, ann in enumerate(doc["annotations"]):
        where = f"{path}: annotations[{n}]"
        if not isinstance(ann, dict):
            parsed.problem("bad_annotation", "An annotation is an object.", where)
            continue
        image = images.get(ann.get("image_id")) if _is_int(ann.get("image_id")) else None
        name = categories.get(ann.get("category_id")) if _is_int(ann.get("category_id")) else None
        if image is None and ann.get("image_id") in refused:
            continue  # its image was refused already (one error, not one per annotation)
        if image is None:
            parsed.problem("unknown_image_id", f"image_id {ann.get('image_id')!r} is not in images.", where)
            continue
        if name is None:
            parsed.problem("unknown_category", f"category_id {ann.get('category_id')!r} is not in "
                           "categories.", where, image)
            continue
        seg = ann.get("segmentation")
        if seg in (None, [], {}):
            parsed.skip(where, "no segmentation (box only)")
            continue
        rle = _segmentation_to_rle(seg, image, where, parsed)
        if rle is None:
            continue
        if rlelib.area(rle) == 0:
            parsed.skip(where, "the mask is empty")
            continue
        if ann.get("iscrowd") and crowd_as_ignore:
            name = IGNORE_CLASS
        else:
            crowd += bool(ann.get("iscrowd"))
        image.instances.append(ImportInstance(class_name=name, rle=rle))
    if crowd:
        parsed.skip(path, f"{crowd} iscrowd annotations were imported as ordinary objects")


def _read_categories(items: list, path: str, parsed: ParsedImport) -> dict[int, str]:
    categories: dict[int, str] = {}
    for n, cat in enumerate(items):
        where = f"{path}: categories[{n}]"
        if not isinstance(cat, dict) or not _is_int(cat.get("id")) or not isinstance(cat.get("name"), str) \
                or not cat["name"].strip():
            parsed.problem("bad_category", "A category needs an integer id and a name.", where)
            continue
        if cat["id"] in categories:
            parsed.problem("duplicate_category", f"Category id {cat['id']} is used twice.", where)
            continue
        name = cat["name"].strip()
        categories[cat["id"]] = name
        color = cat.get("color")
        parsed.add_class(name, color if isinstance(color, str) else None)
    return categories


def _read_images(items: list, path: str, index: FileIndex, split: str | None,
                 parsed: ParsedImport, refused: set[int]) -> dict[int, ImportImage]:
    """The images by id; the ids of images refused for their declared size go to ``refused``."""
    images: dict[int, ImportImage] = {}
    base = posixpath.dirname(path)
    for n, img in enumerate(items):
        where = f"{path}: images[{n}]"
        if (not isinstance(img, dict) or not _is_int(img.get("id"))
                or not isinstance(img.get("file_name"), str) or not img["file_name"]):
            parsed.problem("bad_image", "An image needs id, file_name, and positive integer "
                           "width and height.", where)
            continue
        # before anything is rasterized or decoded at this size (1e9 x 1e9 crashes pycocotools)
        if not declared_size_ok(img.get("width"), img.get("height"), where, parsed):
            refused.add(img["id"])
            continue
        if img["id"] in images:
            parsed.problem("duplicate_image_id", f"Image id {img['id']} is used twice.", where)
            continue
        # the usual COCO layout keeps images in images/<split>/ beside annotations/
        found, reason = index.find(img["file_name"], base, also=(
            posixpath.join("images", split or "", img["file_name"]),
            posixpath.join(posixpath.dirname(base), "images", split or "", img["file_name"])))
        if reason:
            parsed.problem("ambiguous_image", reason, where)
        image = ImportImage(file_name=img["file_name"], width=img["width"], height=img["height"],
                            source=where, data=index.files[found] if found else None,
                            split=split or (split_from_path(found) if found else None))
        images[img["id"]] = image
        parsed.images.append(image)
    return images


def _segmentation_to_rle(seg: Any, image: ImportImage, where: str, parsed: ParsedImport) -> dict | None:
    """A checked RLE for the annotation's segmentation, or None (skipped with a warning, or
    an error that spoils ``image``). Polygon points past the border are moved onto it, as
    pycocotools' rasterizer effectively does; nothing reaches pycocotools unchecked."""
    height, width = image.height, image.width
    if isinstance(seg, dict):
        try:
            return rlelib.normalize(seg, height=height, width=width, allow_list=True)
        except rlelib.RLEError as exc:
            parsed.problem("bad_rle", str(exc), where, image)
            return None
    if not isinstance(seg, list):
        parsed.problem("bad_segmentation", "segmentation must be polygons or an RLE object.", where, image)
        return None
    polygons = seg if seg and all(isinstance(p, list) for p in seg) else None
    if polygons is None or not all(
            len(p) >= 6 and len(p) % 2 == 0 and all(is_number(v) for v in p) for p in polygons):
        parsed.problem("bad_polygon", "A polygon is a list of at least 3 x, y pairs.", where, image)
        return None
    kept, moved = [], 0.0
    for n, flat in enumerate(polygons):
        points = [(float(flat[i]), float(flat[i + 1])) for i in range(0, len(flat), 2)]
        if not points_ok(points, width, height, where, parsed, image):
            return None
        if wholly_outside(points, width, height):
            parsed.skip(f"{where}.segmentation[{n}]",
                        f"the polygon lies wholly outside the {width}x{height} image")
            continue
        points, shift = clip_points(points, width, height)
        why = degenerate_polygon(points)
        if why:
            parsed.skip(f"{where}.segmentation[{n}]", f"the polygon encloses nothing ({why})")
            continue
        moved = max(moved, shift)
        kept.append([v for point in points for v in point])
    if moved:
        parsed.warn(where, clipped_message("Polygon", moved, width, height))
    if not kept:
        return None
    return rlelib.from_polygons(kept, height, width)


def write_coco(images: Sequence[ExportImage], classes: Sequence[ExportClass],
               image_dir: str = "") -> dict:
    """One COCO document for these images. ``file_name`` is ``image_dir/file_name``."""
    doc: dict[str, Any] = {
        "info": {"description": "Exported by Tessera", "version": "1.0"},
        "licenses": [],
        "categories": [{"id": c.index + 1, "name": c.name, "supercategory": "", "color": c.color}
                       for c in classes],
        "images": [],
        "annotations": [],
    }
    ignore = {c.index for c in classes if c.ignore}
    ann_id = 0
    for image_id, image in enumerate(images, start=1):
        doc["images"].append({"id": image_id, "width": image.width, "height": image.height,
                              "file_name": posixpath.join(image_dir, image.file_name)})
        if not image.instances:
            continue
        areas, boxes = rlelib.areas_and_boxes([r for _, r in image.instances])
        for (class_index, rle), area, box in zip(image.instances, areas, boxes, strict=True):
            ann_id += 1
            doc["annotations"].append({
                "id": ann_id, "image_id": image_id, "category_id": class_index + 1,
                "segmentation": {"size": list(rle["size"]), "counts": rle["counts"]},
                "area": area, "bbox": box, "iscrowd": int(class_index in ignore),
            })
    return doc
