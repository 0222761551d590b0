"""COCO run-length encoding (RLE): checked parsing, encoding and decoding. Django-free.

An RLE is ``{"size": [H, W], "counts": str}``: alternating run lengths of 0s and 1s
(starting with 0s) over the mask flattened in column-major (Fortran) order, written
in the compressed string form of pycocotools (``rleToString``: each count, minus the
count two places before it from the third on, in 5-bit groups, ASCII 48..111).

pycocotools' C decoder trusts its input: a malformed string reads and writes past
the mask (it happily "decodes" ``b"zzz"`` into 58 pixels of a 35-pixel mask). So
every RLE that comes from outside goes through :func:`parse_counts` first, which
decodes the string in Python and checks that the runs cover exactly H*W pixels.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as cocomask

RLE = dict  # {"size": [H, W], "counts": str}


class RLEError(ValueError):
    """An RLE that is not well formed (the message says why)."""


def counts_from_string(counts: str) -> list[int]:
    """Decode a compressed COCO counts string into run lengths (no size checks).

    Vectorized: each character holds 5 bits (0x1F) and a continuation flag (0x20); the
    last character of a number carries its sign in 0x10; from the fourth number on,
    each is stored as the difference to the number two places before it."""
    if not counts.isascii():
        raise RLEError("counts is not ASCII.")
    raw = np.frombuffer(counts.encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
    bad = np.flatnonzero((raw < 0) | (raw >= 64))
    if bad.size:
        char = counts[int(bad[0])]
        raise RLEError(f"counts has an invalid character {char!r} at position {int(bad[0])}.")
    if raw.size == 0:
        return []
    ends = (raw & 0x20) == 0
    if not ends[-1]:
        raise RLEError("counts ends in the middle of a number.")
    last = np.flatnonzero(ends)
    starts = np.concatenate(([0], last[:-1] + 1))
    lengths = last - starts + 1
    if lengths.max() > 12:  # 60 bits: far beyond any image size
        raise RLEError("counts holds a number too large for a mask.")
    shift = 5 * (np.arange(raw.size) - np.repeat(starts, lengths))
    values = np.add.reduceat((raw & 0x1F) << shift, starts)
    negative = (raw[last] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * lengths[negative])
    # undo the differences: x[i] += x[i-2] for i > 2, i.e. running sums along odd
    # indices from 1 and along even indices from 2
    if values.size > 3:
        values[1::2] = np.cumsum(values[1::2])
        values[2::2] = np.cumsum(values[2::2])
    return values.tolist()


def counts_to_string(values: Sequence[int]) -> str:
    """Encode run lengths as a compressed COCO counts string (pycocotools' rleToString)."""
    out: list[str] = []
    for i, count in enumerate(values):
        x = int(count) - (int(values[i - 2]) if i > 2 else 0)
        while True:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out.append(chr(c + 48))
            if not more:
                break
    return "".join(out)


def parse_size(size: Any) -> tuple[int, int]:
    if (not isinstance(size, list | tuple) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in size)):
        raise RLEError("size must be [height, width] (two integers).")
    height, width = size
    if height <= 0 or width <= 0:
        raise RLEError(f"size must be positive, got {list(size)}.")
    return height, width


def parse_counts(rle: Any, *, height: int | None = None, width: int | None = None,
                 allow_list: bool = False) -> list[int]:
    """Check an RLE and return its run lengths.

    Accepts the compressed string form (str or bytes) and, with ``allow_list``, the
    uncompressed list of ints. Checks: size is [H, W] (equal to ``height``/``width``
    when given), counts decode, no run is negative, runs sum to H*W.
    Raises :class:`RLEError` with the reason.
    """
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise RLEError("an RLE is an object with 'size' and 'counts'.")
    h, w = parse_size(rle["size"])
    if height is not None and (h, w) != (height, width):
        raise RLEError(f"RLE size is {[h, w]} but the image is {[height, width]} ([H, W]).")
    counts = rle["counts"]
    if isinstance(counts, bytes):
        try:
            counts = counts.decode("ascii")
        except UnicodeDecodeError:
            raise RLEError("counts is not ASCII.") from None
    if isinstance(counts, str):
        values = counts_from_string(counts)
    elif allow_list and isinstance(counts, list):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in counts):
            raise RLEError("uncompressed counts must be a list of integers.")
        values = list(counts)
    else:
        kind = "a string or a list of integers" if allow_list else "a compressed string"
        raise RLEError(f"counts must be {kind}.")
    if any(v < 0 for v in values):
        raise RLEError("counts has a negative run length.")
    total = sum(values)
    if total != h * w:
        raise RLEError(f"runs cover {total} pixels but the mask has {h}x{w} = {h * w}.")
    return values


def normalize(rle: Any, *, height: int | None = None, width: int | None = None,
              allow_list: bool = False) -> RLE:
    """Check an RLE (see :func:`parse_counts`) and return it in canonical compressed form:
    ``{"size": [H, W], "counts": str}`` with zero-length runs merged away."""
    values = parse_counts(rle, height=height, width=width, allow_list=allow_list)
    runs = canonical_runs(values)
    counts = rle["counts"]
    if runs != values or not isinstance(counts, str | bytes):
        counts = counts_to_string(runs)
    elif isinstance(counts, bytes):
        counts = counts.decode("ascii")
    return {"size": [int(v) for v in rle["size"]], "counts": counts}


def canonical_runs(values: Sequence[int]) -> list[int]:
    """Merge zero-length runs so equal masks get equal counts. ``runs[j]`` counts
    zeros for even j and ones for odd j; the first run may be 0 (mask starts with 1)."""
    runs: list[int] = []
    for i, v in enumerate(values):
        value = i % 2
        if v == 0:
            continue
        if runs and (len(runs) - 1) % 2 == value:
            runs[-1] += v
        elif not runs and value == 1:
            runs.extend((0, v))
        else:
            runs.append(v)
    return runs or [0]


def area(rle: RLE) -> int:
    """Number of foreground pixels of a checked RLE (pycocotools, no decoding)."""
    return int(cocomask.area(_raw(rle)))


def _raw(rle: RLE) -> dict:
    counts = rle["counts"]
    return {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def encode(mask: np.ndarray) -> RLE:
    """bool/uint8 (H, W) mask -> ``{"size": [H, W], "counts": str}``."""
    if mask.ndim != 2:
        raise ValueError(f"a mask is 2-D (H, W), got shape {mask.shape}.")
    if mask.dtype == bool and mask.flags.f_contiguous:
        mask = mask.view(np.uint8)  # already what pycocotools reads: no copy
    encoded = cocomask.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": encoded["counts"].decode("ascii")}


def decode(rle: RLE) -> np.ndarray:
    """Checked or self-made RLE -> bool (H, W) mask."""
    return cocomask.decode(_raw(rle)).astype(bool)


def from_polygons(polygons: Sequence[Sequence[float]], height: int, width: int) -> RLE:
    """Rasterize COCO polygons ([x1, y1, x2, y2, ...] in pixel coordinates) the way
    pycocotools does, merging several polygons of one object into one mask."""
    parts = cocomask.frPyObjects([list(map(float, p)) for p in polygons], height, width)
    merged = cocomask.merge(parts) if len(parts) > 1 else parts[0]
    return {"size": [height, width], "counts": merged["counts"].decode("ascii")}


def bbox(rle: RLE) -> list[float]:
    """[x, y, w, h] of the foreground (COCO convention)."""
    return [float(v) for v in cocomask.toBbox(_raw(rle))]


def areas_and_boxes(rles: Sequence[RLE]) -> tuple[list[int], list[list[float]]]:
    """Areas and [x, y, w, h] boxes of many checked RLEs in two pycocotools calls."""
    raws = [_raw(r) for r in rles]
    return ([int(a) for a in cocomask.area(raws)],
            [[float(v) for v in box] for box in cocomask.toBbox(raws)])
