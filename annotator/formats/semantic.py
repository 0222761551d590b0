"""The one overlap rule that turns instance masks into a semantic (one class per pixel)
map. Every export (PNG index masks, training data) derives class maps through
:func:`semantic_map`, so all of them agree pixel for pixel. Django-free.

Rule — **smallest instance on top**: where instances overlap, the pixel takes the
label of the instance with the fewest pixels; between instances of equal area the one
that comes later in the list wins. Pixels no instance covers are 0 (background).

Why not "last drawn wins": the order in which shapes were drawn is an accident of the
labeling session (and differs between tools), and a large region drawn after a small
object (a road painted after a bicycle) would swallow it. With smallest-on-top an
object fully inside a bigger one is never lost, and the result depends on the masks,
not on drawing order (except for exact area ties).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from annotator.formats import rle as rlelib


def paint_order(areas: Sequence[int]) -> list[int]:
    """Indices of instances in the order to paint them (later paints over earlier):
    largest area first; for equal areas, list order."""
    return sorted(range(len(areas)), key=lambda i: (-areas[i], i))


def semantic_map(instances: Sequence[tuple[int, dict]], height: int, width: int) -> np.ndarray:
    """instances: (label, rle) with label in 1..255 (class index + 1).

    Returns (H, W) uint8: 0 background, else the label of the winning instance."""
    out = np.zeros((height, width), dtype=np.uint8)
    areas = [rlelib.area(r) for _, r in instances]
    for i in paint_order(areas):
        label, rle = instances[i]
        if not 0 < label < 256:
            raise ValueError(f"label {label} does not fit a uint8 class map (1..255).")
        out[rlelib.decode(rle)] = label
    return out


def semantic_map_from_arrays(instances: Sequence[tuple[int, np.ndarray]]) -> np.ndarray:
    """Same rule for bool (H, W) arrays (used by tests and in-memory callers)."""
    if not instances:
        raise ValueError("no instances: the map's size is unknown.")
    out = np.zeros(instances[0][1].shape, dtype=np.uint8)
    for i in paint_order([int(m.sum()) for _, m in instances]):
        out[instances[i][1]] = instances[i][0]
    return out
