"""PNG index masks: one 8-bit palette PNG per image, pixel value = class label
(0 background, LabelClass.index + 1 for a class, 255 ignore), with ``classes.json``.
Django-free.

Archive layout written by Tessera (and read back)::

    classes.json              [{"index": 0, "name": "background", "color": "#000000"},
                               {"index": 1, "name": ..., "color": ...}, ...]
    images/<split>/<file>     the images
    masks/<split>/<stem>.png  the index masks (mode "P": the palette shows class colours)

The ignore class is written as 255 (and 255 is read back into the project's ignore
class). Masks come from instances through the overlap rule of
:mod:`annotator.formats.semantic`. Read back, each class present in a mask becomes one
instance holding all its pixels (a semantic map has no instances to recover).
"""
from __future__ import annotations

import io
import posixpath
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from annotator.formats import rle as rlelib
from annotator.formats.dataset import (
    IGNORE_CLASS,
    IGNORE_LABEL,
    IMAGE_EXTENSIONS,
    ExportClass,
    ImportImage,
    ImportInstance,
    ParsedImport,
    declared_size_ok,
    load_json,
    split_from_path,
)
from annotator.formats.semantic import semantic_map

IGNORE = IGNORE_LABEL


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def classes_document(classes: Sequence[ExportClass]) -> list[dict]:
    """classes.json content: background first, then each class at its label value."""
    return [{"index": 0, "name": "background", "color": "#000000"}] + [
        {"index": c.label, "name": c.name, "color": c.color} for c in classes]


def palette(classes: Sequence[ExportClass]) -> list[int]:
    """768 palette entries: class colours at their label values, white for ignore."""
    table = np.zeros((256, 3), dtype=np.uint8)
    table[IGNORE] = 255
    for c in classes:
        table[c.label] = _rgb(c.color)
    return table.reshape(-1).tolist()


def encode_index_png(class_map: np.ndarray, palette_entries: list[int]) -> bytes:
    """(H, W) uint8 class map -> palette PNG bytes (the pixel values are the labels)."""
    image = Image.fromarray(class_map.astype(np.uint8), mode="P")
    image.putpalette(palette_entries)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def index_png_for(instances: Sequence[tuple[int, dict]], height: int, width: int,
                  palette_entries: list[int], ignore_index: int | None = None) -> bytes:
    """instances: (class index 0-based, rle) -> the image's index PNG; the class at
    ``ignore_index`` (the ignore class) is written as 255."""
    class_map = semantic_map([(IGNORE if i == ignore_index else i + 1, r) for i, r in instances],
                             height, width)
    return encode_index_png(class_map, palette_entries)


def decode_index_png(data: bytes | Image.Image) -> np.ndarray:
    """PNG bytes (or an opened PNG) -> (H, W) uint8 label values. Palette and grayscale
    images keep their raw values; anything else is refused (colours cannot be mapped to
    labels reliably)."""
    image = data if isinstance(data, Image.Image) else Image.open(io.BytesIO(data))
    if image.mode not in ("P", "L"):
        raise ValueError(f"an index mask is an 8-bit palette or grayscale PNG, not mode {image.mode}.")
    return np.asarray(image)


def read_png(files: Mapping[str, bytes]) -> ParsedImport:
    """Read a PNG index-mask archive (layout above)."""
    parsed = ParsedImport()
    names = _read_classes(files, parsed)
    images = {posixpath.splitext(posixpath.basename(p))[0]: p for p in files
              if p.lower().endswith(IMAGE_EXTENSIONS) and not _is_mask_path(p)}
    mask_paths = sorted(p for p in files if _is_mask_path(p))
    if not mask_paths:
        parsed.problem("no_masks", "The zip holds no masks/<split>/<name>.png files.")
    for path in mask_paths:
        try:
            mask_image = Image.open(io.BytesIO(files[path]))
            # the size the header declares is checked before any pixel is decoded
            if not declared_size_ok(mask_image.width, mask_image.height, path, parsed):
                continue
            labels = decode_index_png(mask_image)
        except (ValueError, OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
            parsed.problem("bad_mask", f"Cannot read the mask: {exc}", path)
            continue
        height, width = labels.shape
        stem = posixpath.splitext(posixpath.basename(path))[0]
        image_path = images.get(stem)
        image = ImportImage(file_name=posixpath.basename(image_path) if image_path else stem,
                            width=width, height=height, source=path,
                            data=files[image_path] if image_path else None,
                            split=split_from_path(posixpath.dirname(path)), complete=True)
        present = [int(v) for v in np.unique(labels) if v != 0]
        unknown = [v for v in present if v not in names and v != IGNORE]
        if unknown:
            parsed.problem("unknown_label", f"Pixel values {unknown} are not in classes.json.", path)
            continue
        for value in present:
            image.instances.append(ImportInstance(class_name=names.get(value, IGNORE_CLASS),
                                                  rle=rlelib.encode(labels == value)))
        parsed.images.append(image)
    return parsed


def detect_png(files: Mapping[str, bytes]) -> str | None:
    """A PNG index-mask zip: classes.json and masks/<split>/<name>.png."""
    if any(posixpath.basename(p) == "classes.json" for p in files) \
            and any(_is_mask_path(p) for p in files):
        return "the zip holds classes.json and masks/.../*.png index masks"
    return None


def _is_mask_path(path: str) -> bool:
    parts = path.split("/")
    return "masks" in parts[:-1] and path.lower().endswith(".png")


def _read_classes(files: Mapping[str, bytes], parsed: ParsedImport) -> dict[int, str]:
    paths = [p for p in files if posixpath.basename(p) == "classes.json"]
    if len(paths) != 1:
        parsed.problem("no_classes", "The zip needs exactly one classes.json.")
        return {}
    doc = load_json(files[paths[0]], paths[0], parsed)
    entries = doc.get("classes") if isinstance(doc, dict) else doc
    names: dict[int, str] = {}
    if not isinstance(entries, list):
        parsed.problem("bad_structure", "classes.json is a list of {index, name, color}.", paths[0])
        return {}
    for n, entry in enumerate(entries):
        ok = (isinstance(entry, dict) and isinstance(entry.get("index"), int)
              and 0 <= entry["index"] < 256 and isinstance(entry.get("name"), str) and entry["name"].strip())
        if not ok:
            parsed.problem("bad_class", "Each class needs an index 0..255 and a name.", f"{paths[0]}[{n}]")
            continue
        if entry["index"] in (0, IGNORE):
            continue  # background / ignore are not classes
        names[entry["index"]] = entry["name"].strip()
        color = entry.get("color")
        parsed.add_class(entry["name"].strip(), color if isinstance(color, str) else None)
    return names
