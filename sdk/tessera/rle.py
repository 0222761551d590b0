"""COCO run-length encoding, the mask format of the Tessera API, in numpy.

Masks are ``(height, width)`` arrays; an RLE is ``{"size": [height, width], "counts": str}``
with runs over the column-major (Fortran) pixel order, starting with a run of zeros, and
the counts compressed as in pycocotools' ``maskApi.c`` (``rleToString``/``rleFrString``).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np


def _runs(mask: np.ndarray) -> np.ndarray:
    flat = np.asarray(mask, dtype=bool).T.ravel()
    if flat.size == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds)
    if flat[0]:
        runs = np.concatenate(([0], runs))
    return runs.astype(np.int64)


def _counts_to_string(runs: Iterable[int]) -> str:
    runs = [int(v) for v in runs]
    out = []
    for i, x in enumerate(runs):
        if i > 2:
            x -= runs[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift, as in C for the (signed) differences
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def _string_to_counts(s: str) -> list[int]:
    counts: list[int] = []
    p = 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def encode(mask: np.ndarray) -> dict[str, Any]:
    """Binary ``(H, W)`` mask -> ``{"size": [H, W], "counts": str}``."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask is 2-D (height, width), got shape {mask.shape}")
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": _counts_to_string(_runs(mask))}


def decode(rle: Mapping[str, Any]) -> np.ndarray:
    """``{"size": [H, W], "counts": str | list}`` -> boolean ``(H, W)`` mask."""
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    runs = _string_to_counts(counts) if isinstance(counts, str) else [int(v) for v in counts]
    if sum(runs) != height * width:
        raise ValueError(f"RLE counts cover {sum(runs)} pixels, not {height}x{width}")
    values = np.arange(len(runs)) % 2 == 1
    flat = np.repeat(values, runs)
    return flat.reshape(width, height).T.copy()


def class_map(masks: Iterable[tuple[int, np.ndarray]], shape: tuple[int, int],
              dtype: Any = np.int32) -> np.ndarray:
    """Paint ``(value, mask)`` pairs into one ``shape`` array (0 where none; later wins)."""
    out = np.zeros(shape, dtype=dtype)
    for value, mask in masks:
        out[np.asarray(mask, dtype=bool)] = value
    return out


def masks_from_class_map(class_map_: np.ndarray, *, skip: Iterable[int] = (0,)) -> dict[int, np.ndarray]:
    """The inverse: ``{value: boolean mask}`` for every value present (``skip``: background)."""
    skipped = set(skip)
    return {int(v): class_map_ == v for v in np.unique(class_map_) if int(v) not in skipped}
