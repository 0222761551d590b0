"""Label Studio's JSON export (Django-free): reading and writing.

The export is a list of tasks ``{"id", "data": {"image": url}, "annotations": [{"result":
[...], "was_cancelled"}]}``. Results used (each with ``original_width`` and
``original_height`` of the image):

* ``brushlabels``: ``value.rle``, Label Studio's own brush RLE (below) over the RGBA
  image, the alpha channel being the mask;
* ``polygonlabels``: ``value.points`` [[x, y], ...] in percent of the image size;
* ``rectanglelabels``: ``value.x, y, width, height`` in percent, ``rotation`` in degrees
  about the top-left corner; ``ellipselabels``: centre ``x, y``, ``radiusX, radiusY``
  in percent, ``rotation`` about the centre.

Polygons (and boxes and ellipses as polygons) are rasterized as pycocotools does, the
way Label Studio's COCO converter hands them on. Points outside the image are clipped
(a warning). Other result types (choices, keypoints, text) carry no area and are
skipped. A task with several annotations uses the last one that was not cancelled.
The image is found by the base name of ``data.image``, also without the ``abcd1234-``
prefix Label Studio gives uploaded files.

The brush RLE (label-studio-converter ``brush.encode_rle`` / ``decode_rle``; the same
codec as the editor's): a bit stream, MSB first — 32 bits: the number of values
(W * H * 4), 5 bits: word size - 1, 4 x 4 bits: the four run-length field sizes - 1;
then until all values are out: 1 bit "run", 2 bits: which field size, that many bits:
run length - 1, then either one word repeated (run) or that many words. This module
decodes and encodes it with integer reads on the byte string and numpy runs,
faster than label-studio-converter's bit-string codec on large masks, and
bit-identical (benchmarks/masks_io.py; tests compare with the converter's output).

Write: one task per image, every instance as a ``brushlabels`` result.
"""
from __future__ import annotations

import io
import json
import math
import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from annotator.formats import rle as rlelib
from annotator.formats.dataset import (
    IGNORE_CLASS,
    ExportClass,
    ExportImage,
    FileIndex,
    ImportImage,
    ImportInstance,
    ParsedImport,
    declared_size_ok,
    is_number,
    load_json,
    split_from_path,
)
from annotator.formats.shapes import polygon_rle, union

AREA_TYPES = ("brushlabels", "polygonlabels", "rectanglelabels", "ellipselabels")
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


class BrushError(ValueError):
    pass


# --- the brush codec -----------------------------------------------------------------
class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos, self.total = data, 0, len(data) * 8

    def read(self, n: int) -> int:
        end = self.pos + n
        if end > self.total:
            raise BrushError("the RLE ends early.")
        first, last = self.pos >> 3, (end - 1) >> 3
        chunk = int.from_bytes(self.data[first:last + 1], "big")
        self.pos = end
        return (chunk >> ((last + 1) * 8 - end)) & ((1 << n) - 1)


def brush_decode(rle: Sequence[int], height: int, width: int) -> np.ndarray:
    """Label Studio brush RLE -> bool (H, W) mask (alpha channel > 0). Checks that the
    stream holds exactly H * W * 4 values."""
    if not isinstance(rle, list) or not all(isinstance(v, int) and 0 <= v < 256 for v in rle):
        raise BrushError("rle is a list of bytes (0..255).")
    bits = _Bits(bytes(rle))
    total = bits.read(32)
    if total != height * width * 4:
        raise BrushError(f"the RLE holds {total} values but a {width}x{height} RGBA image has "
                         f"{height * width * 4}.")
    word = bits.read(5) + 1
    sizes = [bits.read(4) + 1 for _ in range(4)]
    values: list[int] = []
    lengths: list[int] = []
    done = 0
    while done < total:
        run = bits.read(1)
        count = bits.read(sizes[bits.read(2)]) + 1
        if done + count > total:
            raise BrushError("a run reaches past the end of the image.")
        if run:
            values.append(bits.read(word))
            lengths.append(count)
        else:
            values.extend(bits.read(word) for _ in range(count))
            lengths.extend([1] * count)
        done += count
    # the alpha value of pixel p is value 4p + 3: a run over values [s, e) covers the
    # alphas of pixels [s // 4, e // 4); the non-zero runs' pixel ranges, merged, give
    # the mask's runs in row-major order
    ends = np.cumsum(np.array(lengths, np.int64))
    starts = ends - np.array(lengths, np.int64)
    on = np.array(values, np.int64) > 0
    lo, hi = starts[on] // 4, ends[on] // 4
    keep = hi > lo
    lo, hi = lo[keep], hi[keep]
    if lo.size:
        # a range that starts where (or before) the running end lies merges into it
        new = np.ones(lo.size, bool)
        new[1:] = lo[1:] > np.maximum.accumulate(hi)[:-1]
        lo, hi = lo[new], np.maximum.reduceat(hi, np.flatnonzero(new))
    bounds = np.empty(lo.size * 2 + 2, np.int64)
    bounds[0], bounds[-1] = 0, height * width
    bounds[1:-1:2], bounds[2:-1:2] = lo, hi
    bits_out = np.zeros(bounds.size - 1, np.uint8)
    bits_out[1::2] = 1
    return np.repeat(bits_out, np.diff(bounds)).astype(bool).reshape(height, width)


def brush_encode(mask: np.ndarray) -> list[int]:
    """bool (H, W) mask -> Label Studio brush RLE (RGBA 255 where the mask is set), the
    same bytes as label-studio-converter's ``mask2rle(mask * 255)``."""
    flat = mask.reshape(-1).astype(bool)
    total = flat.size * 4
    parts = [f"{total:032b}", f"{7:05b}", "".join(f"{s - 1:04b}" for s in (3, 4, 8, 16))]
    if flat.size:
        changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        starts = np.concatenate(([0], changes))
        runs = np.diff(np.concatenate((starts, [flat.size]))) * 4
        for start, length in zip(starts.tolist(), runs.tolist(), strict=True):
            value = f"{255 if flat[start] else 0:08b}"
            while length > 2**16:
                parts.append("111" + f"{2**16 - 1:016b}" + value)
                length -= 2**16
            field, width = ((0, 3) if length <= 8 else (1, 4) if length <= 16
                            else (2, 8) if length <= 256 else (3, 16))
            parts.append(f"1{field:02b}{length - 1:0{width}b}{value}")
    bits = "".join(parts)
    bits += "0" * (8 - len(bits) % 8)  # label-studio-converter always pads (8 bits when aligned)
    return list(int(bits, 2).to_bytes(len(bits) // 8, "big"))


# --- reading -------------------------------------------------------------------------
def detect_label_studio(files: Mapping[str, bytes]) -> str | None:
    for path in files:
        if path.lower().endswith(".json"):
            head = files[path][:4096].lstrip()
            if head.startswith(b"[") and b'"annotations"' in head and b'"data"' in head:
                return f"{path} is a list of tasks with data and annotations (Label Studio JSON)"
            if head.startswith(b"[") and b'"result"' in head and b'"original_width"' in head:
                return f"{path} holds Label Studio results"
    return None


def read_label_studio(files: Mapping[str, bytes]) -> ParsedImport:
    parsed = ParsedImport()
    index = FileIndex(files)
    label_files = sorted(p for p in files if p.lower().endswith(".json"))
    if not label_files:
        parsed.problem("no_label_file", "The upload holds no Label Studio .json export.")
    for path in label_files:
        doc = load_json(files[path], path, parsed)
        if doc is None:
            continue
        tasks = doc if isinstance(doc, list) else [doc] if isinstance(doc, dict) else None
        if tasks is None:
            parsed.problem("bad_structure", "A Label Studio export is a list of tasks.", path)
            continue
        for n, task in enumerate(tasks):
            _read_task(task, f"{path}: [{n}]", index, parsed)
    return parsed


def _image_url(task: dict) -> str | None:
    data = task.get("data")
    if not isinstance(data, dict):
        return None
    url = data.get("image") or next((v for v in data.values() if isinstance(v, str)), None)
    return url if isinstance(url, str) and url else None


def _annotation(task: dict, where: str, parsed: ParsedImport) -> list | None:
    annotations = task.get("annotations", task.get("completions"))
    if not isinstance(annotations, list):
        return None
    kept = [a for a in annotations if isinstance(a, dict) and not a.get("was_cancelled")
            and isinstance(a.get("result"), list)]
    if len(kept) > 1:
        parsed.warn(where, f"{len(kept)} annotations; the last one is imported")
    return kept[-1]["result"] if kept else None


def _read_task(task: Any, where: str, index: FileIndex, parsed: ParsedImport) -> None:
    if not isinstance(task, dict):
        parsed.problem("bad_structure", "A task is an object.", where)
        return
    url = _image_url(task)
    if url is None:
        parsed.problem("bad_structure", "The task names no image (data.image).", where)
        return
    results = _annotation(task, where, parsed)
    if results is None:
        parsed.skip(where, "no annotation (unlabeled task)")
        return
    name = posixpath.basename(url.split("?d=")[-1].split("?")[0].replace("\\", "/"))
    found, reason = index.find(name)
    short = _UPLOAD_PREFIX.sub("", name)
    if found is None and reason is None and short != name:
        found, reason = index.find(short)
    if reason:
        parsed.problem("ambiguous_image", reason, where)
    sizes = {(r.get("original_width"), r.get("original_height")) for r in results
             if isinstance(r, dict) and r.get("type") in AREA_TYPES}
    if not sizes and found:  # labeled, nothing here: the image itself gives the size
        data = index.files[found]
        sizes = {_image_size(data.load() if hasattr(data, "load") else data)}  # a deferred image
    if not sizes or sizes == {None}:
        parsed.skip(where, "no region with an area and no image (so no image size)")
        return
    if len(sizes) > 1:
        parsed.problem("bad_image_size", f"The results give different image sizes {sorted(sizes, key=str)}.", where)
        return
    width, height = sizes.pop()
    if not declared_size_ok(width, height, where, parsed):
        return
    image = ImportImage(file_name=posixpath.basename(found) if found else short, width=width,
                        height=height, source=where, data=index.files[found] if found else None,
                        split=split_from_path(found) if found else None, complete=True)
    objects: dict[Any, tuple[str, dict]] = {}
    for n, result in enumerate(results):
        result_where = f"{where}: result[{n}]"
        if not isinstance(result, dict) or not isinstance(result.get("value"), dict):
            parsed.problem("bad_structure", "A result is an object with a value.", result_where)
            continue
        kind = result.get("type")
        if kind not in AREA_TYPES:
            parsed.skip(result_where, f"type {kind!r} has no area")
            continue
        labels = result["value"].get(kind) or result["value"].get("labels")
        if not isinstance(labels, list) or not labels or not all(isinstance(v, str) and v.strip() for v in labels):
            parsed.problem("bad_shape", f"{kind} needs a label.", result_where)
            continue
        rle = _result_rle(kind, result["value"], height, width, result_where, parsed)
        if rle is None:
            continue
        label = labels[0].strip()
        if len(labels) > 1:
            parsed.warn(result_where, f"{len(labels)} labels; imported as {label!r}")
        key = result.get("id") if isinstance(result.get("id"), str) else n
        if key in objects and objects[key][0] == label:  # one region in several results
            objects[key] = (label, union([objects[key][1], rle]))
        else:
            objects[key if key not in objects else (key, n)] = (label, rle)
    for label, rle in objects.values():
        image.instances.append(ImportInstance(class_name=label, rle=rle))
        if label != IGNORE_CLASS:
            parsed.add_class(label)
    parsed.images.append(image)


def _image_size(data: bytes) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            return image.size
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def _numbers(value: dict, keys: Sequence[str]) -> list[float] | None:
    values = [value.get(k) for k in keys]
    return [float(v) for v in values] if all(is_number(v) and math.isfinite(v) for v in values) else None


def _result_rle(kind: str, value: dict, height: int, width: int, where: str,
                parsed: ParsedImport) -> dict | None:
    if kind == "brushlabels":
        if value.get("format", "rle") != "rle":
            parsed.problem("bad_rle", f"Brush format {value.get('format')!r} is not 'rle'.", where)
            return None
        try:
            mask = brush_decode(value.get("rle"), height, width)
        except BrushError as exc:
            parsed.problem("bad_rle", f"The brush RLE does not fit: {exc}", where)
            return None
        if not mask.any():
            parsed.skip(where, "the brush stroke covers no pixel")
            return None
        return rlelib.encode(mask)
    sx, sy = width / 100.0, height / 100.0
    if kind == "polygonlabels":
        raw = value.get("points")
        if not isinstance(raw, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(is_number(v) and math.isfinite(v) for v in p)
                for p in raw):
            parsed.problem("bad_shape", "points is a list of [x%, y%].", where)
            return None
        points = [(x * sx, y * sy) for x, y in raw]
    elif kind == "rectanglelabels":
        box = _numbers(value, ("x", "y", "width", "height"))
        if box is None:
            parsed.problem("bad_shape", "A rectangle needs x, y, width and height (percent).", where)
            return None
        x, y, w, h = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
        points = _rotate([(x, y), (x + w, y), (x + w, y + h), (x, y + h)], (x, y), value)
    else:
        ellipse = _numbers(value, ("x", "y", "radiusX", "radiusY"))
        if ellipse is None:
            parsed.problem("bad_shape", "An ellipse needs x, y, radiusX and radiusY (percent).", where)
            return None
        cx, cy, rx, ry = ellipse[0] * sx, ellipse[1] * sy, ellipse[2] * sx, ellipse[3] * sy
        points = _rotate([(cx + rx * math.cos(t), cy + ry * math.sin(t))
                          for t in np.linspace(0, 2 * math.pi, 72, endpoint=False)], (cx, cy), value)
    return polygon_rle(points, height, width, where, parsed)


def _rotate(points: list[tuple[float, float]], centre: tuple[float, float],
            value: dict) -> list[tuple[float, float]]:
    angle = math.radians(value.get("rotation") or 0) if is_number(value.get("rotation") or 0) else 0
    if not angle:
        return points
    (cx, cy), c, s = centre, math.cos(angle), math.sin(angle)
    return [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c) for x, y in points]


# --- writing -------------------------------------------------------------------------
def write_label_studio(images: Iterable[ExportImage], classes: Sequence[ExportClass]) -> Iterator[tuple[str, bytes]]:
    """``tasks.json`` (the JSON export layout) plus ``images/<split>/<file>``; every
    instance a brushlabels result, the ignore class as ``__ignore__``."""
    names = {c.index: IGNORE_CLASS if c.ignore else c.name for c in classes}
    tasks = []
    for n, image in enumerate(images, start=1):
        path = f"images/{image.split}/{image.file_name}"
        if image.data is not None:
            yield path, image.data
        results = [{
            "id": f"r{n}_{k}", "type": "brushlabels", "from_name": "tag", "to_name": "image",
            "original_width": image.width, "original_height": image.height, "image_rotation": 0,
            "origin": "manual",
            "value": {"format": "rle", "rle": brush_encode(rlelib.decode(rle)),
                      "brushlabels": [names[class_index]]},
        } for k, (class_index, rle) in enumerate(image.instances)]
        tasks.append({"id": n, "data": {"image": path},
                      "annotations": [{"id": n, "result": results, "was_cancelled": False}],
                      "predictions": []})
    yield "tasks.json", json.dumps(tasks).encode()
