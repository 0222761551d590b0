"""CVAT's "CVAT for images 1.1" XML (Django-free): reading and writing.

Layout: ``annotations.xml`` (any ``.xml`` holding ``<annotations>``) and, when the
export saved them, the images under ``images/``. Each ``<image name width height
[subset]>`` holds shapes with a ``label``:

* ``<polygon points="x1,y1;x2,y2;...">``: rasterized as pycocotools does (as CVAT's COCO
  and mask exports do, through datumaro);
* ``<box xtl ytl xbr ybr [rotation]>`` and ``<ellipse cx cy rx ry [rotation]>``: as
  polygons (corners; 72 points on the ellipse);
* ``<mask rle left top width height>``: a bitmap over the box ``left..left+width-1`` x
  ``top..top+height-1``, as run lengths over its rows (row-major), background first.

Shapes sharing a label and a non-zero ``group_id`` form one object. ``outside="1"``
shapes and shapes without area (``polyline``, ``points``, ``tag``, ``skeleton``) are
skipped. Points outside the image are clipped to it (a warning). CVAT's "Segmentation
mask 1.1" export is the VOC layout: :mod:`annotator.formats.semantic_png` reads it.

Write: every instance as a ``<mask>`` over its bounding box (exact, holes included),
labels with their colours in ``<meta>``, the split as the image's ``subset``.
"""
from __future__ import annotations

import math
import posixpath
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping, Sequence
from xml.sax.saxutils import quoteattr

import numpy as np

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
    split_from_path,
)
from annotator.formats.shapes import polygon_rle, union

AREA_SHAPES = ("polygon", "box", "ellipse", "mask")
_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


def _is_cvat_xml(data: bytes) -> bool:
    head = data[:2048]
    return b"<annotations" in head and (b"<version>1.1" in head or b"<meta" in head)


def detect_cvat(files: Mapping[str, bytes]) -> str | None:
    for path in files:
        if path.lower().endswith(".xml") and _is_cvat_xml(files[path]):
            return f"{path} is a CVAT for images 1.1 XML file (<annotations> with <version>1.1)"
    return None


def read_cvat(files: Mapping[str, bytes]) -> ParsedImport:
    parsed = ParsedImport()
    index = FileIndex(files)
    xml_files = sorted(p for p in files if p.lower().endswith(".xml"))
    if not xml_files:
        parsed.problem("no_label_file", "The upload holds no CVAT .xml file.")
    for path in xml_files:
        _read_document(files[path], path, index, parsed)
    return parsed


def _read_document(data: bytes, path: str, index: FileIndex, parsed: ParsedImport) -> None:
    if _DTD.search(data):
        parsed.problem("bad_xml", "Document type declarations and entities are not accepted.", path)
        return
    try:
        events = ET.iterparse(_Bytes(data), events=("start", "end"))
        _, root = next(events)
        if root.tag != "annotations":
            parsed.problem("bad_structure", f"The root element is <{root.tag}>, not <annotations>.", path)
            return
        for event, element in events:
            if event == "end" and element.tag == "label" and element.find("name") is not None:
                name = (element.findtext("name") or "").strip()
                if name and name != IGNORE_CLASS:
                    color = (element.findtext("color") or "").strip()
                    parsed.add_class(name, color if re.fullmatch(r"#[0-9a-fA-F]{6}", color) else None)
            elif event == "end" and element.tag == "image":
                _read_image(element, path, index, parsed)
                root.clear()  # keep memory flat on large files
    except ET.ParseError as exc:
        parsed.problem("bad_xml", f"Not valid XML: {exc}.", path)


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.pos + size
        out, self.pos = self.data[self.pos:end], min(end, len(self.data))
        return out


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _floats(element: ET.Element, names: Sequence[str]) -> list[float] | None:
    try:
        values = [float(element.attrib[n]) for n in names]
    except (KeyError, ValueError):
        return None
    return values if all(math.isfinite(v) for v in values) else None


def _read_image(element: ET.Element, path: str, index: FileIndex, parsed: ParsedImport) -> None:
    name = element.get("name") or ""
    where = f"{path}: image {name or element.get('id')!r}"
    width, height = _int(element.get("width")), _int(element.get("height"))
    if not name:
        parsed.problem("bad_image", "An image needs a name.", where)
        return
    if not declared_size_ok(width, height, where, parsed):
        return
    found, reason = index.find(name, posixpath.dirname(path),
                               also=(posixpath.join(posixpath.dirname(path), "images", name),))
    if reason:
        parsed.problem("ambiguous_image", reason, where)
    image = ImportImage(file_name=posixpath.basename(name), width=width, height=height, source=where,
                        data=index.files[found] if found else None, complete=True,
                        split=split_from_path(element.get("subset") or "")
                        or split_from_path(posixpath.basename(path)[:-4])
                        or (split_from_path(found) if found else None))
    objects: dict[tuple, tuple[str, np.ndarray | dict]] = {}
    for n, shape in enumerate(element):
        shape_where = f"{where}: {shape.tag}[{n}]"
        if shape.tag not in AREA_SHAPES:
            parsed.skip(shape_where, f"<{shape.tag}> has no area")
            continue
        label = (shape.get("label") or "").strip()
        if not label:
            parsed.problem("bad_shape", "A shape needs a label.", shape_where)
            continue
        if shape.get("outside") == "1":
            parsed.skip(shape_where, "the shape is outside (outside=1)")
            continue
        rle = _shape_rle(shape, height, width, shape_where, parsed)
        if rle is None:
            continue
        group = _int(shape.get("group_id")) or 0
        key = (label, group) if group else ("shape", n)
        if key in objects:
            objects[key] = (label, union([objects[key][1], rle]))
        else:
            objects[key] = (label, rle)
    image.instances = [ImportInstance(class_name=label, rle=rle) for label, rle in objects.values()]
    for label, _ in objects.values():
        if label != IGNORE_CLASS:
            parsed.add_class(label)
    parsed.images.append(image)


def _shape_rle(shape: ET.Element, height: int, width: int, where: str, parsed: ParsedImport) -> dict | None:
    if shape.tag == "mask":
        return _mask_rle(shape, height, width, where, parsed)
    if shape.tag == "polygon":
        try:
            points = [(float(x), float(y)) for x, y in
                      (p.split(",") for p in (shape.get("points") or "").split(";") if p.strip())]
        except ValueError:
            points = []
        if not points or not all(math.isfinite(v) for p in points for v in p):
            parsed.problem("bad_shape", "points must be 'x,y;x,y;...'.", where)
            return None
    elif shape.tag == "box":
        box = _floats(shape, ("xtl", "ytl", "xbr", "ybr"))
        if box is None:
            parsed.problem("bad_shape", "A box needs numbers xtl, ytl, xbr, ybr.", where)
            return None
        x1, y1, x2, y2 = box
        points = _rotated([(x1, y1), (x2, y1), (x2, y2), (x1, y2)], shape)
    else:
        ellipse = _floats(shape, ("cx", "cy", "rx", "ry"))
        if ellipse is None:
            parsed.problem("bad_shape", "An ellipse needs numbers cx, cy, rx, ry.", where)
            return None
        cx, cy, rx, ry = ellipse
        points = _rotated([(cx + rx * math.cos(t), cy + ry * math.sin(t))
                           for t in np.linspace(0, 2 * math.pi, 72, endpoint=False)], shape)
    return polygon_rle(points, height, width, where, parsed)


def _rotated(points: list[tuple[float, float]], shape: ET.Element) -> list[tuple[float, float]]:
    """CVAT's ``rotation`` (degrees, clockwise on screen) about the shape's centre."""
    angle = math.radians(float(shape.get("rotation") or 0))
    if not angle:
        return points
    cx = sum(x for x, _ in points) / len(points)
    cy = sum(y for _, y in points) / len(points)
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c) for x, y in points]


def _mask_rle(shape: ET.Element, height: int, width: int, where: str, parsed: ParsedImport) -> dict | None:
    left, top = _int(shape.get("left")), _int(shape.get("top"))
    box_w, box_h = _int(shape.get("width")), _int(shape.get("height"))
    try:
        counts = [int(v) for v in (shape.get("rle") or "").split(",") if v.strip()]
    except ValueError:
        counts = []
    if None in (left, top, box_w, box_h) or not counts or min(counts) < 0 or box_w <= 0 or box_h <= 0:
        parsed.problem("bad_rle", "A mask needs rle (run lengths), left, top, width and height.", where)
        return None
    if sum(counts) != box_w * box_h:
        parsed.problem("bad_rle", f"The runs cover {sum(counts)} pixels but the {box_w}x{box_h} box "
                       f"has {box_w * box_h}.", where)
        return None
    values = np.zeros(len(counts), np.uint8)
    values[1::2] = 1
    crop = np.repeat(values, counts).reshape(box_h, box_w).astype(bool)
    x1, y1 = max(left, 0), max(top, 0)
    x2, y2 = min(left + box_w, width), min(top + box_h, height)
    if x1 >= x2 or y1 >= y2:
        parsed.skip(where, "the mask lies wholly outside the image")
        return None
    if (x1, y1, x2, y2) != (left, top, left + box_w, top + box_h):
        parsed.warn(where, f"the mask's box reaches past the {width}x{height} image; clipped to it")
    mask = np.zeros((height, width), bool)
    mask[y1:y2, x1:x2] = crop[y1 - top:y2 - top, x1 - left:x2 - left]
    if not mask.any():
        parsed.skip(where, "the mask covers no pixel")
        return None
    return rlelib.encode(mask)


# --- writing -------------------------------------------------------------------------
def _mask_element(name: str, mask: np.ndarray) -> str | None:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return None
    top, bottom, left, right = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
    flat = mask[top:bottom + 1, left:right + 1].reshape(-1)
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate(([0], changes, [flat.size])))
    if flat[0]:
        runs = np.concatenate(([0], runs))
    return (f'    <mask label={quoteattr(name)} source="manual" occluded="0" '
            f'rle="{", ".join(map(str, runs.tolist()))}" left="{left}" top="{top}" '
            f'width="{right - left + 1}" height="{bottom - top + 1}" z_order="0">\n    </mask>\n')


def write_cvat(images: Iterable[ExportImage], classes: Sequence[ExportClass]) -> Iterator[tuple[str, bytes]]:
    """``annotations.xml`` plus ``images/<file>``; the ignore class is written as
    ``__ignore__``."""
    names = {c.index: IGNORE_CLASS if c.ignore else c.name for c in classes}
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n'
             '  <meta>\n    <task>\n      <name>Tessera export</name>\n      <labels>\n']
    for c in sorted(classes, key=lambda c: c.index):
        parts.append(f"        <label>\n          <name>{_escape(names[c.index])}</name>\n"
                     f"          <color>{c.color}</color>\n          <type>mask</type>\n"
                     "          <attributes>\n          </attributes>\n        </label>\n")
    parts.append("      </labels>\n    </task>\n  </meta>\n")
    for n, image in enumerate(images):
        if image.data is not None:
            yield f"images/{image.file_name}", image.data
        parts.append(f'  <image id="{n}" name={quoteattr(image.file_name)} subset="{image.split}" '
                     f'width="{image.width}" height="{image.height}">\n')
        for class_index, rle in image.instances:
            element = _mask_element(names[class_index], rlelib.decode(rle))
            if element:
                parts.append(element)
        parts.append("  </image>\n")
    parts.append("</annotations>\n")
    yield "annotations.xml", "".join(parts).encode()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
