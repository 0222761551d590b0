"""Classical IntelliBrush fallback for when no SAM weights are installed.

Django-free. Seeded by the same prompts as SAM (include/exclude clicks, optional box,
optional previous mask) and built on OpenCV's GrabCut:

1. Seed region. With a box, the box itself. With clicks only, a region grown from each
   include click over pixels of similar colour (Lab, chroma weighted up, as objects are
   usually told apart by hue more than by shading), limited to a window around the click.
2. GrabCut from a mask: clicks are definite foreground/background, the seed region is
   probable foreground, a margin around it probable background, and everything further
   away definite background (which also keeps the work proportional to the object, not
   the image).
   Exclude clicks grow a region of their own that becomes definite background; where
   it overlaps the include seed, each pixel goes to the nearest click.
   An exclude click the result still covers (on texture its colour region is tiny) cuts
   the part under it: its pixels nearer to that click than to any include click go.
3. Keep the connected parts that contain an include click (or, with a box only, the
   largest part), and fill their holes.

The score is a heuristic in [0, 1] (colour separation between the mask and its
surroundings), not SAM's predicted IoU.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

#: Shown to users when the fallback answered instead of SAM.
INSTALL_HINT = (
    "IntelliBrush used the classical fallback because no SAM checkpoint is installed. "
    "Download sam_vit_b_01ec64.pth (or the vit_l / vit_h file) from "
    "https://dl.fbaipublicfiles.com/segment_anything/ into the folder named by "
    "TESSERA_WEIGHTS_DIR, or set TESSERA_SAM_CHECKPOINT to its path, then restart the workers."
)

_GROW_TOLERANCE = 18.0  # max Lab-ish distance of a grown pixel to the seed colour
_CHROMA_WEIGHT = 1.6  # weight of a*, b* against L* in the colour distance
_WINDOW_FRACTION = 0.6  # grow window side as a fraction of the image's longer side
_MARGIN_FRACTION = 0.5  # probable-background margin around the seed, relative to its size
_ITERATIONS = 5


class FallbackMask(NamedTuple):
    """mask: (H, W) bool; score: heuristic confidence in [0, 1]."""

    mask: np.ndarray
    score: float


def _lab(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 Lab with a*, b* scaled by ``_CHROMA_WEIGHT``; smoothed."""
    smooth = cv2.GaussianBlur(image, (5, 5), 0)
    lab = cv2.cvtColor(smooth, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 1:] *= _CHROMA_WEIGHT
    return lab


def _grow_region(lab: np.ndarray, x: int, y: int) -> np.ndarray:
    """Bool (H, W): pixels connected to (x, y) whose colour is near the seed colour."""
    height, width = lab.shape[:2]
    y0, y1 = max(0, y - 2), min(height, y + 3)
    x0, x1 = max(0, x - 2), min(width, x + 3)
    seed = np.median(lab[y0:y1, x0:x1].reshape(-1, 3), axis=0)
    distance = np.linalg.norm(lab - seed, axis=2)
    similar = (distance <= _GROW_TOLERANCE).astype(np.uint8)
    similar[y, x] = 1
    half = int(_WINDOW_FRACTION * max(height, width) / 2) + 1
    window = np.zeros_like(similar)
    window[max(0, y - half) : y + half + 1, max(0, x - half) : x + half + 1] = 1
    similar &= window
    similar = cv2.morphologyEx(similar, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    _, components = cv2.connectedComponents(similar, connectivity=4)
    return components == components[y, x]


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill the holes of a bool mask (regions not connected to the image border)."""
    padded = np.pad(mask.astype(np.uint8), 1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    holes = flood[1:-1, 1:-1] == 0
    return mask | holes


def _score(lab: np.ndarray, mask: np.ndarray) -> float:
    """Separation of the mask's colour from a ring around it, squashed into [0, 1]."""
    if not mask.any() or mask.all():
        return 0.0
    ring = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool) & ~mask
    if not ring.any():
        return 0.0
    inside, outside = lab[mask], lab[ring]
    gap = float(np.linalg.norm(inside.mean(0) - outside.mean(0)))
    spread = float(inside.std(0).mean() + outside.std(0).mean()) + 1e-6
    return float(1.0 - np.exp(-gap / (2.0 * spread)))


def fallback_segment(
    image: np.ndarray,
    points: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    box: np.ndarray | None = None,
    mask_prior: np.ndarray | None = None,
    *,
    max_side: int | None = 768,
) -> FallbackMask:
    """Segment the object the prompt points at, without SAM.

    image: (H, W, 3) uint8 RGB. points: (N, 2) (x, y) pixels; labels: (N,) 1 include,
    0 exclude. box: (4,) x0, y0, x1, y1. mask_prior: optional (H, W) bool previous mask,
    used as probable foreground (refinement). Returns an (H, W) bool mask and a score.
    Images whose longer side exceeds ``max_side`` are segmented at that size (GrabCut's
    cost grows with the pixel count) and the mask is scaled back up.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] < 3 or image.dtype != np.uint8:
        raise ValueError("image must be (H, W, 3) uint8 RGB")
    image = np.ascontiguousarray(image[..., :3])
    height, width = image.shape[:2]
    if max_side and max(height, width) > max_side:
        scale = max_side / max(height, width)
        small_w, small_h = max(1, round(width * scale)), max(1, round(height * scale))
        small = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
        prior = None
        if mask_prior is not None:
            prior = cv2.resize(
                np.asarray(mask_prior, np.uint8), (small_w, small_h), interpolation=cv2.INTER_NEAREST
            ).astype(bool)
        result = fallback_segment(
            small,
            None if points is None else np.asarray(points, np.float64) * scale,
            labels,
            None if box is None else np.asarray(box, np.float64) * scale,
            prior,
            max_side=None,
        )
        full = cv2.resize(
            result.mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_LINEAR
        ).astype(bool)
        return FallbackMask(full, result.score)
    pts = np.zeros((0, 2), np.int64) if points is None else np.asarray(points, np.float64)
    pts = np.round(pts.reshape(-1, 2)).astype(np.int64)
    pts[:, 0] = pts[:, 0].clip(0, width - 1)
    pts[:, 1] = pts[:, 1].clip(0, height - 1)
    lbl = np.zeros(0, np.int64) if labels is None else np.asarray(labels).reshape(-1).astype(int)
    if len(lbl) != len(pts):
        raise ValueError("labels must give one 0/1 label per point")
    positives = pts[lbl == 1]
    negatives = pts[lbl == 0]
    if not len(positives) and box is None and mask_prior is None:
        raise ValueError("give an include click, a box or a previous mask")

    lab = _lab(image)
    seed = np.zeros((height, width), bool)
    if box is not None:
        x0, y0, x1, y1 = (int(round(v)) for v in np.asarray(box, np.float64).reshape(4))
        x0, x1 = sorted((max(0, min(width - 1, x0)), max(0, min(width - 1, x1))))
        y0, y1 = sorted((max(0, min(height - 1, y0)), max(0, min(height - 1, y1))))
        seed[y0 : y1 + 1, x0 : x1 + 1] = True
    else:
        for x, y in positives:
            seed |= _grow_region(lab, int(x), int(y))
    if mask_prior is not None:
        seed |= np.asarray(mask_prior, bool).reshape(height, width)
    excluded = _excluded_region(lab, positives, negatives, seed)
    seed &= ~excluded
    if not seed.any():  # the exclude clicks took everything away: nothing to segment
        return FallbackMask(seed, 0.0)

    trimap = np.full((height, width), cv2.GC_BGD, np.uint8)
    if box is not None:
        trimap[seed] = cv2.GC_PR_FGD  # outside the box stays definite background
    else:
        ys, xs = np.nonzero(seed)
        span = max(int(xs.max() - xs.min()), int(ys.max() - ys.min()), 4)
        margin = max(4, int(_MARGIN_FRACTION * span))
        near = cv2.dilate(seed.astype(np.uint8), np.ones((2 * margin + 1,) * 2, np.uint8))
        trimap[near.astype(bool)] = cv2.GC_PR_BGD
        trimap[seed] = cv2.GC_PR_FGD
    for x, y in positives:
        cv2.circle(trimap, (int(x), int(y)), 2, int(cv2.GC_FGD), thickness=-1)
    trimap[excluded] = cv2.GC_BGD
    for x, y in negatives:
        cv2.circle(trimap, (int(x), int(y)), 2, int(cv2.GC_BGD), thickness=-1)

    mask = seed.copy()
    has_fg = np.isin(trimap, (cv2.GC_FGD, cv2.GC_PR_FGD)).any()
    has_bg = np.isin(trimap, (cv2.GC_BGD, cv2.GC_PR_BGD)).any()
    if has_fg and has_bg:
        bgd_model = np.zeros((1, 65), np.float64)
        fgd_model = np.zeros((1, 65), np.float64)
        try:
            cv2.grabCut(
                cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                trimap,
                None,
                bgd_model,
                fgd_model,
                _ITERATIONS,
                cv2.GC_INIT_WITH_MASK,
            )
            mask = np.isin(trimap, (cv2.GC_FGD, cv2.GC_PR_FGD))
        except cv2.error:
            mask = seed.copy()  # degenerate colour models: keep the seed region
    mask = _keep_prompted_parts(mask, positives)
    mask = _fill_holes(mask)
    mask &= ~excluded
    anchors = positives
    if not len(anchors) and box is not None:  # a box prompt: its centre stands for the object
        anchors = np.array([[(x0 + x1) / 2, (y0 + y1) / 2]])
    mask = _cut_at_excludes(mask, anchors, negatives)
    mask = _keep_prompted_parts(mask, positives)
    return FallbackMask(mask, _score(lab, mask))


def _cut_at_excludes(mask: np.ndarray, anchors: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    """An exclude click that still lands in the mask (its colour region was too small to
    matter, e.g. on texture) cuts the mask: pixels of the part holding that click that are
    nearer to an exclude click than to every anchor (the include clicks, or a box's centre)
    are dropped. With no anchor, the whole part under the exclude click is dropped."""
    inside = [(int(x), int(y)) for x, y in negatives if mask[y, x]]
    if not inside:
        return mask
    _, components = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    hit = np.isin(components, sorted({int(components[y, x]) for x, y in inside}))
    ys, xs = np.nonzero(hit)
    out = mask.copy()
    to_neg = np.full(len(xs), np.inf)
    for x, y in inside:
        to_neg = np.minimum(to_neg, np.hypot(xs - x, ys - y))
    to_pos = np.full(len(xs), np.inf)
    for x, y in anchors:
        to_pos = np.minimum(to_pos, np.hypot(xs - x, ys - y))
    drop = to_neg <= to_pos
    out[ys[drop], xs[drop]] = False
    return out


def _excluded_region(
    lab: np.ndarray, positives: np.ndarray, negatives: np.ndarray, seed: np.ndarray
) -> np.ndarray:
    """Bool (H, W): what the exclude clicks rule out.

    Each exclude click grows a region of similar colour. Where that region overlaps the
    include seed (same-looking neighbours, e.g. two touching objects of one colour), a
    pixel goes to the nearest click, include or exclude, so the split falls between them.
    """
    height, width = lab.shape[:2]
    excluded = np.zeros((height, width), bool)
    if not len(negatives):
        return excluded
    for x, y in negatives:
        excluded |= _grow_region(lab, int(x), int(y))
    overlap = excluded & seed
    if overlap.any() and len(positives):
        ys, xs = np.nonzero(overlap)
        to_pos = np.min(np.hypot(xs[:, None] - positives[:, 0], ys[:, None] - positives[:, 1]), 1)
        to_neg = np.min(np.hypot(xs[:, None] - negatives[:, 0], ys[:, None] - negatives[:, 1]), 1)
        keep = to_pos < to_neg
        excluded[ys[keep], xs[keep]] = False
    for x, y in negatives:
        excluded[y, x] = True
    return excluded


def _keep_prompted_parts(mask: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """Connected parts of ``mask`` holding an include click, else its largest part."""
    if not mask.any():
        return mask
    count, components = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    wanted = {int(components[y, x]) for x, y in positives if components[y, x] > 0}
    if not wanted:
        sizes = np.bincount(components.ravel(), minlength=count)
        sizes[0] = 0
        wanted = {int(sizes.argmax())}
    return np.isin(components, list(wanted))
