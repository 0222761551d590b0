"""Helpers the newer format modules share (Django-free): polygons clipped to the image
with a warning, a class map split into one instance per class, image look-up by stem.
"""
from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping

import numpy as np
from pycocotools import mask as cocomask

from annotator.formats import rle as rlelib
from annotator.formats.dataset import (
    IGNORE_CLASS,
    IGNORE_LABEL,
    IMAGE_EXTENSIONS,
    ImportInstance,
    ParsedImport,
)


def polygon_rle(points: list[tuple[float, float]], height: int, width: int, where: str,
                parsed: ParsedImport) -> dict | None:
    """A polygon (pixel-corner coordinates) as an RLE, rasterized as pycocotools does.
    Points outside the image are clipped to it (a warning); a polygon with fewer than 3
    distinct points, no area or nothing inside the image is skipped."""
    if len({(x, y) for x, y in points}) < 3:
        parsed.skip(where, "a polygon needs at least 3 distinct points")
        return None
    clipped = [(min(max(x, 0.0), float(width)), min(max(y, 0.0), float(height))) for x, y in points]
    if clipped != points:
        parsed.warn(where, f"points outside the {width}x{height} image were clipped to it")
    xs = np.array([x for x, _ in clipped])
    ys = np.array([y for _, y in clipped])
    if abs(float(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1)))) < 1e-9:
        parsed.skip(where, "the polygon has no area (inside the image)")
        return None
    rle = rlelib.from_polygons([[v for p in clipped for v in p]], height, width)
    if rlelib.area(rle) == 0:
        parsed.skip(where, "the polygon covers no pixel")
        return None
    return rle


def class_map_instances(labels: np.ndarray, names: Mapping[int, str], ignore_values: Iterable[int] = (IGNORE_LABEL,),
                        background: int = 0) -> tuple[list[ImportInstance], list[int]]:
    """One instance per class present in a class map (values in ``names``), the ignore
    values as ignore regions. Returns (instances, values that are neither)."""
    ignore = set(ignore_values)
    instances, unknown = [], []
    values = np.unique(labels)
    ignore_mask = np.isin(labels, [v for v in values if int(v) in ignore]) if ignore else None
    for value in (int(v) for v in values):
        if value == background or value in ignore:
            continue
        if value not in names:
            unknown.append(value)
            continue
        instances.append(ImportInstance(class_name=names[value], rle=rlelib.encode(labels == value)))
    if ignore_mask is not None and ignore_mask.any():
        instances.append(ImportInstance(class_name=IGNORE_CLASS, rle=rlelib.encode(ignore_mask)))
    return instances, unknown


class StemIndex:
    """Images of the upload by file stem (the name without folder and extension)."""

    def __init__(self, files: Iterable[str], exclude: Iterable[str] = ()) -> None:
        skip = set(exclude)
        self.by_stem: dict[str, list[str]] = {}
        for path in files:
            if path.lower().endswith(IMAGE_EXTENSIONS) and path not in skip:
                stem = posixpath.splitext(posixpath.basename(path))[0]
                self.by_stem.setdefault(stem, []).append(path)

    def find(self, stem: str, near: str = "") -> str | None:
        """The image with this stem: the only one, else the one sharing the most leading
        folders with ``near`` (the mask's path)."""
        matches = self.by_stem.get(stem, [])
        if len(matches) <= 1:
            return matches[0] if matches else None
        parts = near.split("/")

        def shared(path: str) -> int:
            n = 0
            for a, b in zip(path.split("/"), parts, strict=False):
                if a != b:
                    break
                n += 1
            return n
        return max(matches, key=lambda p: (shared(p), p))


def union(rles: list[dict]) -> dict:
    """The union of RLEs of one size (pycocotools' merge)."""
    merged = cocomask.merge([{"size": list(r["size"]), "counts": r["counts"].encode("ascii")} for r in rles])
    return {"size": list(rles[0]["size"]), "counts": merged["counts"].decode("ascii")}
