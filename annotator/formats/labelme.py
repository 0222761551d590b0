"""LabelMe JSON files: reading and writing. Django-free.

A LabelMe file describes one image: ``version``, ``flags``, ``shapes``, ``imagePath``
(relative to the JSON file), ``imageData`` (base64 image or null), ``imageHeight``,
``imageWidth``. Each shape has ``label``, ``points`` ([[x, y], ...]), ``group_id``,
``shape_type`` and, for ``mask`` shapes, ``mask``: a base64 PNG covering the box
``points = [[x1, y1], [x2, y2]]`` (rows y1..y2, columns x1..x2 inclusive).

Shapes become masks as the LabelMe tool draws them (PIL, outline and fill):
polygon, rectangle (two corners), circle (centre and a point on the circle) and mask.
Shapes sharing a ``group_id`` and a label form one object; a shape without group id
is its own object. The label ``__ignore__`` (LabelMe's ignore label) marks an ignore
region: it goes to the project's ignore class, which exports write back as
``__ignore__``. ``line``, ``linestrip``, ``point`` and ``points`` carry no area
and are skipped (reported).

Written files carry one ``mask`` shape per instance (exact, holes included), the image
beside the JSON, and ``imageData: null``.
"""
from __future__ import annotations

import base64
import binascii
import io
import math
import posixpath
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from annotator.formats import rle as rlelib
from annotator.formats.dataset import (
    IGNORE_CLASS,
    ExportClass,
    ExportImage,
    FileIndex,
    ImportImage,
    ImportInstance,
    ParsedImport,
    in_bounds,
    is_number,
    load_json,
    split_from_path,
)

LABELME_VERSION = "5.5.0"
AREA_SHAPES = ("polygon", "rectangle", "circle", "mask")
NO_AREA_SHAPES = ("line", "linestrip", "point", "points")


def read_labelme(files: dict[str, bytes]) -> ParsedImport:
    """Read every ``.json`` of the upload as a LabelMe file."""
    parsed = ParsedImport()
    index = FileIndex(files)
    label_files = sorted(p for p in files if p.lower().endswith(".json"))
    if not label_files:
        parsed.problem("no_label_file", "The upload holds no .json LabelMe file.")
    seen: dict[str, str] = {}
    for path in label_files:
        doc = load_json(files[path], path, parsed)
        if doc is None:
            continue
        image = _read_document(doc, path, index, parsed)
        if image is None:
            continue
        key = image.file_name if image.data is None else f"{image.file_name}#{path}"
        if key in seen:
            parsed.problem("duplicate_image", f"{image.file_name!r} is labeled by both "
                           f"{seen[key]} and {path}.", path)
        seen[key] = path
        parsed.images.append(image)
    return parsed


def _read_document(doc: Any, path: str, index: FileIndex, parsed: ParsedImport) -> ImportImage | None:
    if not isinstance(doc, dict):
        parsed.problem("bad_structure", "A LabelMe file is a JSON object.", path)
        return None
    problems = []
    if not isinstance(doc.get("shapes"), list):
        problems.append("shapes (a list)")
    if not isinstance(doc.get("imagePath"), str) or not doc.get("imagePath"):
        problems.append("imagePath (a file name)")
    for key in ("imageHeight", "imageWidth"):
        value = doc.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            problems.append(f"{key} (a positive integer)")
    if problems:
        parsed.problem("bad_structure", f"Missing or wrong: {', '.join(problems)}.", path)
        return None
    height, width = doc["imageHeight"], doc["imageWidth"]
    data = None
    if doc.get("imageData"):
        try:
            data = base64.b64decode(doc["imageData"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            parsed.problem("bad_image_data", "imageData is not valid base64.", path)
            return None
    else:
        found, reason = index.find(doc["imagePath"], posixpath.dirname(path))
        if reason:
            parsed.problem("ambiguous_image", reason, path)
        data = index.files[found] if found else None
    image = ImportImage(file_name=posixpath.basename(doc["imagePath"].replace("\\", "/")),
                        width=width, height=height, source=path, data=data,
                        split=split_from_path(posixpath.dirname(path)), complete=True)
    objects: dict[Any, tuple[str, np.ndarray]] = {}
    for n, shape in enumerate(doc["shapes"]):
        where = f"{path}: shapes[{n}]"
        result = _shape_mask(shape, height, width, where, parsed)
        if result is None:
            continue
        label, mask = result
        group = shape.get("group_id")
        key = (label, group) if group is not None else ("shape", n)
        if key in objects:
            objects[key][1][mask] = True
        else:
            objects[key] = (label, mask)
    for label, mask in objects.values():
        if mask.any():
            image.instances.append(ImportInstance(class_name=label, rle=rlelib.encode(mask)))
            if label != IGNORE_CLASS:  # __ignore__ goes to the project's ignore class
                parsed.add_class(label)
        else:
            parsed.skip(path, f"an object of {label!r} covers no pixel")
    return image


def _points(value: Any) -> list[tuple[float, float]] | None:
    if not isinstance(value, list):
        return None
    points = []
    for p in value:
        if not isinstance(p, list | tuple) or len(p) != 2 or not all(is_number(v) for v in p):
            return None
        points.append((float(p[0]), float(p[1])))
    return points


def _shape_mask(shape: Any, height: int, width: int, where: str,
                parsed: ParsedImport) -> tuple[str, np.ndarray] | None:
    if not isinstance(shape, dict) or not isinstance(shape.get("label"), str) or not shape["label"].strip():
        parsed.problem("bad_shape", "A shape needs a label.", where)
        return None
    kind = shape.get("shape_type") or "polygon"
    if kind in NO_AREA_SHAPES:
        parsed.skip(where, f"shape_type {kind!r} has no area")
        return None
    if kind not in AREA_SHAPES:
        parsed.problem("bad_shape", f"Unknown shape_type {kind!r}.", where)
        return None
    group = shape.get("group_id")
    if group is not None and (not isinstance(group, int) or isinstance(group, bool)):
        parsed.problem("bad_shape", "group_id must be an integer or null.", where)
        return None
    points = _points(shape.get("points"))
    needed = {"polygon": 3, "rectangle": 2, "circle": 2, "mask": 2}[kind]
    if points is None or len(points) < needed or (kind != "polygon" and len(points) != needed):
        parsed.problem("bad_shape", f"A {kind} needs {'at least ' if kind == 'polygon' else ''}"
                       f"{needed} points [x, y].", where)
        return None
    if not in_bounds(points, width, height):
        parsed.problem("shape_out_of_bounds", f"A point of this {kind} lies outside the "
                       f"{width}x{height} image.", where)
        return None
    label = shape["label"].strip()
    if kind == "mask":
        mask = _mask_shape(shape.get("mask"), points, height, width, where, parsed)
        return None if mask is None else (label, mask)
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    if kind == "polygon":
        draw.polygon(points, outline=1, fill=1)
    elif kind == "rectangle":
        (x1, y1), (x2, y2) = points
        draw.rectangle([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)], outline=1, fill=1)
    else:  # circle: centre, then a point on the circle
        (cx, cy), (px, py) = points
        r = math.hypot(cx - px, cy - py)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=1, fill=1)
    return label, np.asarray(canvas, dtype=bool)


def _mask_shape(encoded: Any, points: list[tuple[float, float]], height: int, width: int,
                where: str, parsed: ParsedImport) -> np.ndarray | None:
    if not isinstance(encoded, str) or not encoded:
        parsed.problem("bad_shape", "A mask shape needs 'mask': a base64 PNG.", where)
        return None
    try:
        crop = np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded, validate=True))))
    except (binascii.Error, ValueError, OSError, UnidentifiedImageError):
        parsed.problem("bad_shape", "mask is not a base64-encoded image.", where)
        return None
    if crop.ndim == 3:
        crop = crop[..., 0]
    (x1, y1), (x2, y2) = ((int(x), int(y)) for x, y in points)
    box = (y2 - y1 + 1, x2 - x1 + 1)
    if crop.shape != box or x2 >= width or y2 >= height or x1 < 0 or y1 < 0:
        parsed.problem("bad_mask_size", f"mask is {crop.shape[1]}x{crop.shape[0]} but its box "
                       f"[{x1}, {y1}]-[{x2}, {y2}] needs {box[1]}x{box[0]} inside the image.", where)
        return None
    mask = np.zeros((height, width), dtype=bool)
    mask[y1:y2 + 1, x1:x2 + 1] = crop.astype(bool)
    return mask


def write_labelme(image: ExportImage, classes: Sequence[ExportClass], image_path: str,
                  embed_image: bool = False) -> dict:
    """The LabelMe document for one image: one ``mask`` shape per instance."""
    names = {c.index: IGNORE_CLASS if c.ignore else c.name for c in classes}
    shapes = []
    for class_index, rle in image.instances:
        mask = rlelib.decode(rle)
        ys, xs = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        if not len(ys):
            continue
        y1, y2, x1, x2 = int(ys[0]), int(ys[-1]), int(xs[0]), int(xs[-1])
        out = io.BytesIO()
        Image.fromarray(mask[y1:y2 + 1, x1:x2 + 1].astype(np.uint8)).save(out, format="PNG")
        shapes.append({
            "label": names[class_index], "points": [[float(x1), float(y1)], [float(x2), float(y2)]],
            "group_id": None, "description": "", "shape_type": "mask", "flags": {},
            "mask": base64.b64encode(out.getvalue()).decode("ascii"),
        })
    return {
        "version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": image_path,
        "imageData": base64.b64encode(image.data).decode("ascii") if embed_image and image.data else None,
        "imageHeight": image.height, "imageWidth": image.width,
    }
