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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
    clip_points,
    clipped_message,
    declared_size_ok,
    degenerate_polygon,
    in_bounds,
    is_number,
    json_documents,
    load_json,
    points_ok,
    split_from_path,
    wholly_outside,
)

LABELME_VERSION = "5.5.0"
AREA_SHAPES = ("polygon", "rectangle", "circle", "mask")
NO_AREA_SHAPES = ("line", "linestrip", "point", "points")


def read_labelme(files: Mapping[str, bytes]) -> ParsedImport:
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
            parsed.skip(path, f"{image.file_name!r} is already labeled by {seen[key]}; "
                        "this duplicate was left out")
            continue
        seen[key] = path
        parsed.images.append(image)
    return parsed


def detect_labelme(files: Mapping[str, bytes]) -> str | None:
    """A LabelMe upload: .json files that are objects with shapes and imagePath."""
    for path, doc in json_documents(files):
        if isinstance(doc, dict) and isinstance(doc.get("shapes"), list) and "imagePath" in doc:
            return f"{path} is an object with 'shapes' and 'imagePath', as LabelMe writes"
    return None


def _read_document(doc: Any, path: str, index: FileIndex, parsed: ParsedImport) -> ImportImage | None:
    if not isinstance(doc, dict):
        parsed.problem("bad_structure", "A LabelMe file is a JSON object.", path)
        return None
    problems = []
    if not isinstance(doc.get("shapes"), list):
        problems.append("shapes (a list)")
    if not isinstance(doc.get("imagePath"), str) or not doc.get("imagePath"):
        problems.append("imagePath (a file name)")
    if problems:
        parsed.problem("bad_structure", f"Missing or wrong: {', '.join(problems)}.", path)
        return None
    # before anything is drawn at this size (a 465-byte file can declare 100000x100000)
    height, width = doc.get("imageHeight"), doc.get("imageWidth")
    if not declared_size_ok(width, height, path, parsed):
        return None
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
    # Shapes are drawn on crops of their own size; one full-size mask exists at a time,
    # while an object is encoded (memory does not grow with the number of shapes).
    objects: dict[Any, tuple[str, list[_Crop]]] = {}
    for n, shape in enumerate(doc["shapes"]):
        where = f"{path}: shapes[{n}]"
        result = _shape_mask(shape, height, width, where, parsed, image)
        if result is None:
            continue
        label, crop = result
        group = shape.get("group_id")
        key = (label, group) if group is not None else ("shape", n)
        objects.setdefault(key, (label, []))[1].append(crop)
    for label, crops in objects.values():
        if not any(c.mask.any() for c in crops):
            parsed.skip(path, f"an object of {label!r} covers no pixel")
            continue
        mask = np.zeros((height, width), dtype=bool)
        for c in crops:
            mask[c.y0:c.y0 + c.mask.shape[0], c.x0:c.x0 + c.mask.shape[1]] |= c.mask
        image.instances.append(ImportInstance(class_name=label, rle=rlelib.encode(mask)))
        if label != IGNORE_CLASS:  # __ignore__ goes to the project's ignore class
            parsed.add_class(label)
    return image


@dataclass
class _Crop:
    """A shape's pixels in the box of the image at (x0, y0)."""

    x0: int
    y0: int
    mask: np.ndarray


def _draw(kind: str, points: list[tuple[float, float]], height: int, width: int) -> _Crop:
    """Draw a shape as LabelMe does (PIL, outline and fill, on the image's canvas: PIL's
    rasterizer is not exactly translation-invariant) and keep the box around it."""
    if kind == "circle":
        (cx, cy), (px, py) = points
        r = math.hypot(cx - px, cy - py)
        box = [(cx - r, cy - r), (cx + r, cy + r)]
    else:
        box = points
    x0 = max(0, math.floor(min(x for x, _ in box)) - 1)
    y0 = max(0, math.floor(min(y for _, y in box)) - 1)
    x1 = min(width, math.ceil(max(x for x, _ in box)) + 2)
    y1 = min(height, math.ceil(max(y for _, y in box)) + 2)
    canvas = Image.new("1", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    if kind == "polygon":
        draw.polygon(points, outline=1, fill=1)
    elif kind == "rectangle":
        (ax, ay), (bx, by) = points
        draw.rectangle([min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)], outline=1, fill=1)
    else:  # circle: its bounding box
        draw.ellipse(box, outline=1, fill=1)
    return _Crop(x0, y0, np.asarray(canvas.crop((x0, y0, max(x1, x0), max(y1, y0))), dtype=bool))


def _points(value: Any) -> list[tuple[float, float]] | None:
    if not isinstance(value, list):
        return None
    points = []
    for p in value:
        if not isinstance(p, list | tuple) or len(p) != 2 or not all(is_number(v) for v in p):
            return None
        points.append((float(p[0]), float(p[1])))
    return points


def _shape_mask(shape: Any, height: int, width: int, where: str, parsed: ParsedImport,
                image: ImportImage) -> tuple[str, _Crop] | None:
    """The shape drawn as LabelMe draws it. Points past the border are moved onto it (a
    warning), shapes wholly outside or enclosing nothing are skipped (a warning), what
    cannot be understood is an error that spoils ``image``."""
    def fail(code: str, message: str) -> None:
        parsed.problem(code, message, where, image)

    if not isinstance(shape, dict) or not isinstance(shape.get("label"), str) or not shape["label"].strip():
        fail("bad_shape", "A shape needs a label.")
        return None
    kind = shape.get("shape_type") or "polygon"
    if kind in NO_AREA_SHAPES:
        parsed.skip(where, f"shape_type {kind!r} has no area")
        return None
    if kind not in AREA_SHAPES:
        fail("bad_shape", f"Unknown shape_type {kind!r}.")
        return None
    group = shape.get("group_id")
    if group is not None and (not isinstance(group, int) or isinstance(group, bool)):
        fail("bad_shape", "group_id must be an integer or null.")
        return None
    points = _points(shape.get("points"))
    needed = {"polygon": 3, "rectangle": 2, "circle": 2, "mask": 2}[kind]
    if points is None or len(points) < needed or (kind != "polygon" and len(points) != needed):
        fail("bad_shape", f"A {kind} needs {'at least ' if kind == 'polygon' else ''}"
             f"{needed} points [x, y].")
        return None
    if not points_ok(points, width, height, where, parsed, image):
        return None
    label = shape["label"].strip()
    if kind == "mask":
        crop = _mask_shape(shape.get("mask"), points, height, width, where, parsed, image)
        return None if crop is None else (label, crop)
    if kind == "circle":
        (cx, cy), (px, py) = points
        r = math.hypot(cx - px, cy - py)
        box = [(cx - r, cy - r), (cx + r, cy + r)]
        if wholly_outside(box, width, height):
            parsed.skip(where, f"the circle lies wholly outside the {width}x{height} image")
            return None
        if not in_bounds(box, width, height):
            parsed.warn(where, f"the circle extends past the {width}x{height} image; "
                        "only its part inside is kept")
    else:
        if wholly_outside(points, width, height):
            parsed.skip(where, f"the {kind} lies wholly outside the {width}x{height} image")
            return None
        clipped, moved = clip_points(points, width, height)
        if moved:
            parsed.warn(where, clipped_message(f"{kind.capitalize()}", moved, width, height))
            points = clipped
        why = degenerate_polygon(points) if kind == "polygon" else None
        if why:
            parsed.skip(where, f"the polygon encloses nothing ({why})")
            return None
    return label, _draw(kind, points, height, width)


def _mask_shape(encoded: Any, points: list[tuple[float, float]], height: int, width: int,
                where: str, parsed: ParsedImport, image: ImportImage) -> _Crop | None:
    if not isinstance(encoded, str) or not encoded:
        parsed.problem("bad_shape", "A mask shape needs 'mask': a base64 PNG.", where, image)
        return None
    (x1, y1), (x2, y2) = ((int(x), int(y)) for x, y in points)
    box = (y2 - y1 + 1, x2 - x1 + 1)
    try:
        crop_image = Image.open(io.BytesIO(base64.b64decode(encoded, validate=True)))
        # the PNG's header size is checked against its box before any pixel is decoded
        if (crop_image.height, crop_image.width) != box or x2 >= width or y2 >= height \
                or x1 < 0 or y1 < 0:
            parsed.problem("bad_mask_size", f"mask is {crop_image.width}x{crop_image.height} but "
                           f"its box [{x1}, {y1}]-[{x2}, {y2}] needs {box[1]}x{box[0]} inside the "
                           "image.", where, image)
            return None
        crop = np.asarray(crop_image)
    except (binascii.Error, ValueError, OSError, UnidentifiedImageError, Image.DecompressionBombError):
        parsed.problem("bad_shape", "mask is not a base64-encoded image.", where, image)
        return None
    if crop.ndim == 3:
        crop = crop[..., 0]
    return _Crop(x1, y1, crop.astype(bool))


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
