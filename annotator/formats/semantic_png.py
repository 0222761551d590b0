"""Semantic PNG masks as other tools write them (Django-free): one class map per image
plus a class list, in three layouts.

* **VOC** (also CVAT's "Segmentation mask 1.1" and datumaro's ``voc_segmentation``)::

      labelmap.txt                       "# label:color_rgb:parts:actions", then
                                         "name:r,g,b::" per class, background first
      SegmentationClass/<stem>.png       palette PNG (pixel = class index) or RGB
                                         (pixel colour = the class colour)
      JPEGImages/<stem>.jpg              the images
      ImageSets/Segmentation/<split>.txt the stems of each split

  Without labelmap.txt the 21 PASCAL VOC classes and their colour map apply. Index 255
  (colour 224,224,192, VOC's object border) is "void": the project's ignore class.
* **Cityscapes**: ``gtFine/<split>/<city>/<stem>_gtFine_labelIds.png`` (pixel = label id
  of the Cityscapes class table) beside ``leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png``.
  The labels Cityscapes leaves out of evaluation (unlabeled, ego vehicle, ...,
  license plate) go to the ignore class. A ``label_colors.txt`` ("r g b name" per line,
  as datumaro writes it: id 0 the background, then the lines in order) replaces the
  standard table.
* **ADE20K-style index maps**: ``annotations/<split>/<stem>.png`` (grayscale, pixel =
  class number, 0 = "other"/background) beside ``images/<split>/<stem>.jpg``, with the
  class list ``objectInfo150.csv`` (Idx,...,Name) or ``classes.txt`` (line n = number n,
  the first line the background).

Each class present in a map becomes one instance holding all its pixels. The writer
produces the VOC layout with palette PNGs (255 for the ignore class), which CVAT imports
as "Segmentation mask 1.1".
"""
from __future__ import annotations

import csv
import io
import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from annotator.formats.dataset import (
    IGNORE_LABEL,
    ExportClass,
    ExportImage,
    ImportImage,
    ParsedImport,
    declared_size_ok,
    split_from_path,
)
from annotator.formats.png import encode_index_png
from annotator.formats.semantic import semantic_map
from annotator.formats.shapes import StemIndex, class_map_instances

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
               "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor")
VOC_VOID_COLOR = (224, 224, 192)
# Cityscapes label table (cityscapesscripts/helpers/labels.py): id -> (name, ignoreInEval)
CITYSCAPES = {
    0: ("unlabeled", True), 1: ("ego vehicle", True), 2: ("rectification border", True),
    3: ("out of roi", True), 4: ("static", True), 5: ("dynamic", True), 6: ("ground", True),
    7: ("road", False), 8: ("sidewalk", False), 9: ("parking", True), 10: ("rail track", True),
    11: ("building", False), 12: ("wall", False), 13: ("fence", False), 14: ("guard rail", True),
    15: ("bridge", True), 16: ("tunnel", True), 17: ("pole", False), 18: ("polegroup", True),
    19: ("traffic light", False), 20: ("traffic sign", False), 21: ("vegetation", False),
    22: ("terrain", False), 23: ("sky", False), 24: ("person", False), 25: ("rider", False),
    26: ("car", False), 27: ("truck", False), 28: ("bus", False), 29: ("caravan", True),
    30: ("trailer", True), 31: ("train", False), 32: ("motorcycle", False), 33: ("bicycle", False),
}
CITYSCAPES_COLORS = {
    7: "#804080", 8: "#f423e8", 11: "#464646", 12: "#66669c", 13: "#be9999", 17: "#999999",
    19: "#faaa1e", 20: "#dcdc00", 21: "#6b8e23", 22: "#98fb98", 23: "#4682b4", 24: "#dc143c",
    25: "#ff0000", 26: "#00008e", 27: "#000046", 28: "#003c64", 31: "#005064", 32: "#0000e6",
    33: "#770b20",
}
_CITYSCAPES_MASK = re.compile(r"^(.*)_gtFine_labelIds\.png$")
_VOC_DIR, _ADE_DIR = "SegmentationClass", "annotations"
_MASK_FOLDERS = {"SegmentationClass", "SegmentationObject", "SegmentationClassAug", "gtFine", "annotations"}


def voc_color(index: int) -> tuple[int, int, int]:
    """PASCAL VOC's colour map (bit-interleaved class index)."""
    r = g = b = 0
    for shift in range(7, -1, -1):
        r |= ((index >> 0) & 1) << shift
        g |= ((index >> 1) & 1) << shift
        b |= ((index >> 2) & 1) << shift
        index >>= 3
    return r, g, b


def _hex(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _layout(files: Iterable[str]) -> str | None:
    paths = list(files)
    if any(_CITYSCAPES_MASK.match(posixpath.basename(p)) for p in paths):
        return "cityscapes"
    if any(f"/{_VOC_DIR}/" in f"/{p}" and p.lower().endswith(".png") for p in paths):
        return "voc"
    has_list = any(posixpath.basename(p) in ("objectInfo150.csv", "classes.txt") for p in paths)
    if has_list and any(f"/{_ADE_DIR}/" in f"/{p}" and p.lower().endswith(".png") for p in paths):
        return "ade20k"
    return None


def detect_semantic_png(files: Mapping[str, bytes]) -> str | None:
    layout = _layout(files)
    return {
        "voc": "SegmentationClass/*.png class maps (PASCAL VOC / CVAT Segmentation mask 1.1)",
        "cityscapes": "gtFine/*_gtFine_labelIds.png maps (Cityscapes)",
        "ade20k": "annotations/*.png index maps with a class list (ADE20K style)",
    }.get(layout or "")


# --- class tables --------------------------------------------------------------------
class _Table:
    """Pixel value -> class name, ignore values, colour -> value for RGB masks."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}
        self.colors: dict[tuple[int, int, int], int] = {}
        self.ignore: set[int] = {IGNORE_LABEL}
        self.background = 0


def _find(files: Iterable[str], name: str) -> str | None:
    found = sorted((p for p in files if posixpath.basename(p) == name), key=len)
    return found[0] if found else None


def _text(files: Mapping[str, bytes], path: str) -> list[str]:
    return files[path].decode("utf-8-sig", errors="replace").splitlines()


def _voc_table(files: Mapping[str, bytes], parsed: ParsedImport) -> _Table:
    table = _Table()
    table.colors[VOC_VOID_COLOR] = IGNORE_LABEL
    path = _find(files, "labelmap.txt")
    entries: list[tuple[str, tuple[int, int, int] | None]] = []
    if path is None:
        entries = [(name, None) for name in VOC_CLASSES]
    else:
        for n, line in enumerate(_text(files, path)):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name, _, rest = line.partition(":")
            color_text = rest.split(":")[0].strip()
            color = None
            if color_text:
                try:
                    r, g, b = (int(v) for v in color_text.split(","))
                    color = (r, g, b)
                except ValueError:
                    parsed.problem("bad_class", f"Colour {color_text!r} is not r,g,b.", f"{path}: line {n + 1}")
            entries.append((name.strip(), color))
    for index, (name, color) in enumerate(entries):
        rgb = color or voc_color(index)
        table.colors[rgb] = index
        if index == 0 or name.lower() in ("background", "_background_"):
            table.background = index
            continue
        if name.lower() in ("void", "__ignore__", "ignore"):
            table.ignore.add(index)
            continue
        table.names[index] = name
        parsed.add_class(name, _hex(rgb))
    return table


def _cityscapes_table(files: Mapping[str, bytes], parsed: ParsedImport) -> _Table:
    table = _Table()
    path = _find(files, "label_colors.txt")
    if path is not None:  # datumaro's custom table: "r g b name" or "name" per line
        entries = []
        for line in (line for line in _text(files, path) if line.strip()):
            parts = line.split()
            has_rgb = len(parts) > 3 and all(v.isdigit() for v in parts[:3])
            entries.append((" ".join(parts[3:] if has_rgb else parts),
                            tuple(int(v) for v in parts[:3]) if has_rgb else None))
        # as datumaro numbers them: the black (else "background") entry is id 0, put
        # first (added when absent), the others follow in file order
        background = next((e for e in entries if e[1] == (0, 0, 0)), None) or next(
            (e for e in entries if e[0].lower() == "background"), None)
        others = [e for e in entries if e is not background]
        for index, (name, rgb) in enumerate(others, start=1):
            table.names[index] = name
            parsed.add_class(name, _hex(rgb) if rgb else None)
        return table
    table.background = -1  # every Cityscapes pixel has a label; 0 is "unlabeled" (ignored)
    for index, (name, ignored) in CITYSCAPES.items():
        if ignored:
            table.ignore.add(index)
        else:
            table.names[index] = name
            parsed.add_class(name, CITYSCAPES_COLORS.get(index))
    return table


def _ade_table(files: Mapping[str, bytes], parsed: ParsedImport) -> _Table:
    table = _Table()
    table.ignore = set()  # ADE's 0 is "other" (background); there is no ignore value
    csv_path = _find(files, "objectInfo150.csv")
    if csv_path is not None:
        rows = csv.DictReader(io.StringIO("\n".join(_text(files, csv_path))))
        for n, row in enumerate(rows):
            try:
                index, name = int(row["Idx"]), row["Name"].split(";")[0].strip()
            except (KeyError, ValueError, AttributeError):
                parsed.problem("bad_class", "A row needs Idx and Name.", f"{csv_path}: row {n + 1}")
                continue
            table.names[index] = name
            parsed.add_class(name)
        return table
    path = _find(files, "classes.txt")
    for index, line in enumerate(line.strip() for line in _text(files, path or "")):
        if index and line:
            table.names[index] = line
            parsed.add_class(line)
    return table


# --- reading -------------------------------------------------------------------------
def _label_map(data: bytes, where: str, table: _Table, parsed: ParsedImport) -> np.ndarray | None:
    """Mask bytes -> (H, W) int32 values, the size checked before any pixel is decoded."""
    try:
        image = Image.open(io.BytesIO(data))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        parsed.problem("bad_mask", f"Cannot read the mask: {exc}", where)
        return None
    if not declared_size_ok(image.width, image.height, where, parsed):
        return None
    try:
        if image.mode in ("P", "L", "I;16", "I"):
            return np.asarray(image).astype(np.int32)
        if image.mode not in ("RGB", "RGBA"):
            parsed.problem("bad_mask", f"A mask is a palette, grayscale or RGB PNG, not {image.mode}.", where)
            return None
        rgb = np.asarray(image.convert("RGB")).astype(np.int32)
    except (OSError, ValueError) as exc:
        parsed.problem("bad_mask", f"Cannot read the mask: {exc}", where)
        return None
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    colors, inverse = np.unique(packed, return_inverse=True)
    lookup = {(int(c) >> 16, (int(c) >> 8) & 255, int(c) & 255): n for n, c in enumerate(colors)}
    values = np.full(len(colors), -2, np.int32)
    for rgb_value, n in lookup.items():
        values[n] = table.colors.get(rgb_value, -2)
    unknown = [c for c, n in lookup.items() if values[n] == -2]
    if unknown:
        parsed.problem("unknown_color", f"Colours {unknown[:5]} are not in the class list.", where)
        return None
    return values[inverse.reshape(packed.shape)]


def _masks(files: Mapping[str, bytes], layout: str) -> list[tuple[str, str]]:
    """(mask path, image stem) pairs."""
    out = []
    for path in sorted(files):
        base = posixpath.basename(path)
        if layout == "cityscapes":
            m = _CITYSCAPES_MASK.match(base)
            if m:
                out.append((path, f"{m.group(1)}_leftImg8bit"))
        elif base.lower().endswith(".png") and f"/{_VOC_DIR if layout == 'voc' else _ADE_DIR}/" in f"/{path}":
            out.append((path, posixpath.splitext(base)[0]))
    return out


def _voc_splits(files: Mapping[str, bytes]) -> dict[str, str]:
    splits = {}
    for path in files:
        parts = path.split("/")
        if len(parts) >= 3 and parts[-3:-1] == ["ImageSets", "Segmentation"] and path.endswith(".txt"):
            split = split_from_path(posixpath.basename(path)[:-4])
            for line in _text(files, path):
                if line.strip() and split:
                    splits.setdefault(line.split()[0], split)
    return splits


def read_semantic_png(files: Mapping[str, bytes]) -> ParsedImport:
    parsed = ParsedImport()
    layout = _layout(files)
    if layout is None:
        parsed.problem("no_masks", "No class maps found: expected SegmentationClass/*.png (VOC), "
                       "gtFine/*_gtFine_labelIds.png (Cityscapes) or annotations/*.png with "
                       "objectInfo150.csv or classes.txt (ADE20K).")
        return parsed
    table = {"voc": _voc_table, "cityscapes": _cityscapes_table, "ade20k": _ade_table}[layout](files, parsed)
    masks = _masks(files, layout)
    images = StemIndex((p for p in files if not _MASK_FOLDERS & set(p.split("/")[:-1])),
                       exclude=[m for m, _ in masks])
    splits = _voc_splits(files) if layout == "voc" else {}
    for path, stem in masks:
        labels = _label_map(files[path], path, table, parsed)
        if labels is None:
            continue
        height, width = labels.shape
        image_path = images.find(stem, near=path)
        name = posixpath.basename(image_path) if image_path else f"{stem}.png"
        if layout == "cityscapes" and not image_path:
            name = f"{stem}.png"
        instances, unknown = class_map_instances(labels, table.names, table.ignore, table.background)
        if unknown:
            parsed.problem("unknown_label", f"Pixel values {unknown[:10]} are not in the class list.", path)
            continue
        parsed.images.append(ImportImage(
            file_name=name, width=width, height=height, source=path, instances=instances,
            data=files[image_path] if image_path else None, complete=True,
            split=splits.get(posixpath.splitext(posixpath.basename(path))[0]) or split_from_path(
                posixpath.dirname(path))))
    if not masks:
        parsed.problem("no_masks", "The upload holds no class maps.")
    return parsed


# --- writing -------------------------------------------------------------------------
def write_semantic_png(images: Iterable[ExportImage], classes: Sequence[ExportClass]) -> Iterator[tuple[str, bytes]]:
    """The VOC layout (CVAT "Segmentation mask 1.1"): palette PNGs whose value n is the
    class on line n of labelmap.txt (the classes in index order, background first), 255
    for the ignore class."""
    lines = ["# label:color_rgb:parts:actions", "background:0,0,0::"]
    table = np.zeros((256, 3), np.uint8)
    table[IGNORE_LABEL] = VOC_VOID_COLOR
    labels = {}
    for c in sorted(classes, key=lambda c: c.index):
        if c.ignore:
            labels[c.index] = IGNORE_LABEL
            continue
        labels[c.index] = label = len(lines) - 1  # consecutive: labelmap line n is value n
        rgb = (int(c.color[1:3], 16), int(c.color[3:5], 16), int(c.color[5:7], 16))
        table[label] = rgb
        lines.append(f"{c.name}:{rgb[0]},{rgb[1]},{rgb[2]}::")
    palette = table.reshape(-1).tolist()
    splits: dict[str, list[str]] = {}
    for image in images:
        stem = posixpath.splitext(image.file_name)[0]
        if image.data is not None:
            yield f"JPEGImages/{image.file_name}", image.data
        class_map = semantic_map([(labels[i], r) for i, r in image.instances], image.height, image.width)
        yield f"SegmentationClass/{stem}.png", encode_index_png(class_map, palette)
        splits.setdefault(image.split, []).append(stem)
    yield "labelmap.txt", ("\n".join(lines) + "\n").encode()
    for split, stems in sorted(splits.items()):
        yield f"ImageSets/Segmentation/{split}.txt", ("\n".join(stems) + "\n").encode()
