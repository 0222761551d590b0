"""Synthetic segmentation data: images of shapes with exactly known masks.

Django-free. Used by tests (training convergence, IntelliBrush fallback, import/export),
by the demo project seeding and by the benchmarks. Everything is deterministic from
the seed: the same ``seed`` (and size) always gives the same pixels.

Scene model (painter's algorithm):
  * a background (flat colour, gradient, stripes, checkerboard or smooth blotches);
  * 1..``max_objects`` shapes drawn one after another; a later shape hides the
    earlier ones, so each instance mask holds only its *visible* pixels and the
    instance masks are pairwise disjoint;
  * each shape is filled with a texture (flat, stripes, dots, gradient) around a
    class-typical hue, so class identity comes from both outline and appearance;
  * mild Gaussian pixel noise over the whole image (the masks are unaffected).

Label convention (shared across Tessera): in ``SyntheticSample.semantic`` pixel 0 is
background and ``class_index + 1`` is the class at ``SYNTHETIC_CLASSES[class_index]``.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

# (name, display colour). The display colour is what the UI uses for the class; the
# fill hue below is what the renderer uses for the shapes' pixels.
SYNTHETIC_CLASSES: list[tuple[str, str]] = [
    ("circle", "#e6194b"),
    ("rectangle", "#3cb44b"),
    ("triangle", "#4363d8"),
    ("ellipse", "#f58231"),
]

# Typical fill hue per class (0..1 on the HSV wheel); each shape jitters around it.
_CLASS_HUES: tuple[float, ...] = (0.0, 0.33, 0.62, 0.09)
_HUE_JITTER = 0.04

DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((128, 128),)
#: Sizes of real photo datasets (width, height): landscape, portrait, small and a 12 MP photo.
MIXED_SIZES: tuple[tuple[int, int], ...] = ((500, 375), (338, 500), (320, 240), (4000, 3000))


@dataclass(frozen=True)
class SyntheticInstance:
    """One visible object.

    ``class_index`` is 0-based into ``SYNTHETIC_CLASSES``; ``mask`` is a bool array of
    shape (H, W) holding the pixels where this object is visible (never empty).
    """

    class_index: int
    mask: np.ndarray

    @property
    def area(self) -> int:
        return int(self.mask.sum())


@dataclass(frozen=True)
class SyntheticSample:
    """A rendered scene.

    image:      (H, W, 3) uint8 RGB.
    instances:  visible instances, back to front, disjoint masks.
    semantic:   (H, W) uint8; 0 background, ``class_index + 1`` for an object.
    seed:       the seed that produced it.
    """

    image: np.ndarray
    instances: list[SyntheticInstance] = field(default_factory=list)
    semantic: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.uint8))
    seed: int = 0

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    """'#rrggbb' -> (r, g, b) ints in 0..255."""
    value = color.lstrip("#")
    if len(value) != 6:
        raise ValueError(f"expected '#rrggbb', got {color!r}")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _hsv_rgb(h: float, s: float, v: float) -> np.ndarray:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return np.array([r, g, b], dtype=np.float32) * 255.0


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A (H, W, 3) float32 background in 0..255: low-saturation so shapes stand out."""
    base = _hsv_rgb(rng.random(), rng.uniform(0.0, 0.3), rng.uniform(0.25, 0.9))
    other = _hsv_rgb(rng.random(), rng.uniform(0.0, 0.3), rng.uniform(0.25, 0.9))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    kind = int(rng.integers(0, 5))
    if kind == 0:  # flat
        weight = np.zeros((height, width), np.float32)
    elif kind == 1:  # linear gradient in a random direction
        angle = rng.uniform(0, 2 * np.pi)
        proj = np.cos(angle) * xx + np.sin(angle) * yy
        weight = (proj - proj.min()) / max(float(np.ptp(proj)), 1.0)
    elif kind == 2:  # soft stripes
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(6.0, 24.0)
        proj = np.cos(angle) * xx + np.sin(angle) * yy
        weight = 0.5 + 0.5 * np.sin(2 * np.pi * proj / period)
    elif kind == 3:  # checkerboard
        cell = int(rng.integers(4, 17))
        weight = (((yy // cell) + (xx // cell)) % 2).astype(np.float32) * 0.6
    else:  # smooth blotches: upsampled low-res noise
        small = rng.random((max(2, height // 16), max(2, width // 16))).astype(np.float32)
        weight = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    return base[None, None, :] * (1 - weight[..., None]) + other[None, None, :] * weight[..., None]


def _shape_mask(
    rng: np.random.Generator, class_index: int, height: int, width: int
) -> np.ndarray:
    """Full (not occlusion-clipped) bool mask of one shape of ``class_index``."""
    canvas = np.zeros((height, width), np.uint8)
    short = min(height, width)
    cx = float(rng.uniform(0.1, 0.9) * width)
    cy = float(rng.uniform(0.1, 0.9) * height)
    size = float(rng.uniform(0.1, 0.25) * short)  # roughly the shape's "radius"
    angle = float(rng.uniform(0, 360))
    name = SYNTHETIC_CLASSES[class_index][0]
    if name == "circle":
        cv2.circle(canvas, (round(cx), round(cy)), max(2, round(size)), 1, thickness=-1)
    elif name == "ellipse":
        axes = (max(3, round(size * 1.3)), max(2, round(size * rng.uniform(0.5, 0.7))))
        cv2.ellipse(canvas, (round(cx), round(cy)), axes, angle, 0, 360, 1, thickness=-1)
    elif name == "rectangle":
        w = size * rng.uniform(1.2, 2.0)
        h = size * rng.uniform(0.9, 1.6)
        box = cv2.boxPoints(((cx, cy), (w, h), angle))
        cv2.fillPoly(canvas, [np.round(box).astype(np.int32)], 1)
    elif name == "triangle":
        start = np.deg2rad(angle)
        offsets = start + np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3])
        offsets = offsets + rng.uniform(-0.3, 0.3, size=3)
        radius = size * 1.3
        pts = np.stack([cx + radius * np.cos(offsets), cy + radius * np.sin(offsets)], axis=1)
        cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 1)
    else:  # pragma: no cover - guarded by SYNTHETIC_CLASSES
        raise ValueError(name)
    return canvas.astype(bool)


def _texture(rng: np.random.Generator, class_index: int, height: int, width: int) -> np.ndarray:
    """(H, W, 3) float32 fill for a shape of ``class_index``, around the class hue."""
    hue = _CLASS_HUES[class_index] + rng.uniform(-_HUE_JITTER, _HUE_JITTER)
    main = _hsv_rgb(hue, rng.uniform(0.6, 1.0), rng.uniform(0.55, 1.0))
    second = _hsv_rgb(hue + rng.uniform(-0.03, 0.03), rng.uniform(0.5, 1.0), rng.uniform(0.3, 0.7))
    kind = int(rng.integers(0, 4))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == 0:  # flat
        weight = np.zeros((height, width), np.float32)
    elif kind == 1:  # stripes
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(4.0, 10.0)
        proj = np.cos(angle) * xx + np.sin(angle) * yy
        weight = (np.sin(2 * np.pi * proj / period) > 0).astype(np.float32) * 0.7
    elif kind == 2:  # dots
        period = int(rng.integers(4, 9))
        weight = (((yy % period) < period / 2) & ((xx % period) < period / 2)).astype(np.float32)
        weight *= 0.7
    else:  # radial-ish gradient
        proj = np.hypot(xx - rng.uniform(0, width), yy - rng.uniform(0, height))
        weight = (proj / max(float(proj.max()), 1.0)).astype(np.float32)
    return main[None, None, :] * (1 - weight[..., None]) + second[None, None, :] * weight[..., None]


def make_sample(
    seed: int, width: int = 128, height: int = 128, max_objects: int = 6
) -> SyntheticSample:
    """Render one scene deterministically from ``seed``.

    Returns a ``SyntheticSample`` with at least one visible instance (when
    ``max_objects >= 1``). Image (height, width, 3) uint8 RGB; semantic (height, width)
    uint8 with 0 = background and class_index + 1 for objects.
    """
    if width < 8 or height < 8:
        raise ValueError("width and height must be at least 8 pixels")
    if max_objects < 0:
        raise ValueError("max_objects must be >= 0")
    rng = np.random.default_rng(seed)
    image = _background(rng, height, width)
    owner = np.full((height, width), -1, np.int16)  # index of the topmost shape per pixel
    classes: list[int] = []
    count = int(rng.integers(1, max_objects + 1)) if max_objects else 0
    for order in range(count):
        class_index = int(rng.integers(0, len(SYNTHETIC_CLASSES)))
        mask = _shape_mask(rng, class_index, height, width)
        fill = _texture(rng, class_index, height, width)
        image[mask] = fill[mask]
        owner[mask] = order
        classes.append(class_index)

    noise_sigma = float(rng.uniform(2.0, 10.0))
    image = image + rng.normal(0.0, noise_sigma, size=image.shape).astype(np.float32)
    image_u8 = np.clip(np.round(image), 0, 255).astype(np.uint8)

    instances: list[SyntheticInstance] = []
    semantic = np.zeros((height, width), np.uint8)
    for order, class_index in enumerate(classes):
        visible = owner == order
        if not visible.any():
            continue  # fully hidden by later shapes
        instances.append(SyntheticInstance(class_index=class_index, mask=visible))
        semantic[visible] = class_index + 1
    return SyntheticSample(image=image_u8, instances=instances, semantic=semantic, seed=seed)


def sample_seed(seed: int, index: int) -> int:
    """The per-sample seed that ``make_dataset(seed=seed)`` uses for item ``index``."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def make_dataset(
    count: int,
    seed: int = 0,
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    max_objects: int = 6,
) -> list[SyntheticSample]:
    """``count`` scenes; item i uses ``sample_seed(seed, i)`` and size ``sizes[i % len(sizes)]``.

    ``sizes`` holds (width, height) pairs; pass several to get varied image sizes.
    """
    if not sizes:
        raise ValueError("sizes must not be empty")
    samples = []
    for index in range(count):
        width, height = sizes[index % len(sizes)]
        samples.append(
            make_sample(sample_seed(seed, index), width=width, height=height, max_objects=max_objects)
        )
    return samples


def class_names() -> list[str]:
    """Names of the synthetic classes in index order."""
    return [name for name, _ in SYNTHETIC_CLASSES]
