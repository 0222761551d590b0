"""Turning class maps into API payloads: COCO RLE per class, polygons, palette PNG.

The RLE codec is the project's one, :mod:`annotator.formats.rle` (Django-free, like
this package); ``rle_encode`` / ``rle_decode`` are its ``encode`` / ``decode``."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from annotator.formats.rle import decode as rle_decode
from annotator.formats.rle import encode as rle_encode

__all__ = ["class_map_png", "encode_class_map", "hex_to_rgb", "mask_polygons", "rle_decode", "rle_encode"]


def mask_polygons(mask: np.ndarray, min_points: int = 3) -> list[list[float]]:
    """Outer contours of a binary mask as COCO-style flat polygons ``[x0, y0, x1, y1, ...]``.

    Uses ``cv2.findContours`` (external contours, simple chain approximation); contours
    with fewer than ``min_points`` vertices are dropped. Coordinates are pixel indices.
    """
    import cv2

    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    polygons: list[list[float]] = []
    for contour in contours:
        if len(contour) >= min_points:
            polygons.append([float(v) for v in contour.reshape(-1)])
    return polygons


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    """``"#rrggbb"`` -> (r, g, b)."""
    value = color.lstrip("#")
    if len(value) != 6:
        raise ValueError(f"colour must be #rrggbb, got {color!r}")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def class_map_png(class_map: np.ndarray, colors: Sequence[str]) -> bytes:
    """Palette PNG of a class map: pixel value = model label, palette = class colours."""
    from PIL import Image

    palette: list[int] = []
    for color in colors:
        palette.extend(hex_to_rgb(color))
    data = np.ascontiguousarray(class_map, dtype=np.uint8)
    image = Image.frombytes("P", (data.shape[1], data.shape[0]), data.tobytes())
    image.putpalette(palette + [0] * (768 - len(palette)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def encode_class_map(
    class_map: np.ndarray,
    classes: Sequence[dict[str, Any]],
    *,
    polygons: bool = False,
    png: bool = False,
) -> dict[str, Any]:
    """API payload for one predicted class map.

    Args:
        class_map: uint8 (H, W); 0 background, label i = ``classes[i]``.
        classes: the artifact's classes (``index``, ``name``, ``color``), background first.
        polygons: add ``"polygons"`` to each prediction.
        png: add ``"png"``: base64 palette PNG of the whole class map.

    Returns:
        ``{"width", "height", "predictions": [{"label", "class_name", "rle", "area"
        [, "polygons"]}], ["png"]}``: one prediction per non-background label that occurs,
        ordered by label. ``label`` is the model label (project ``LabelClass.index + 1``).
    """
    height, width = class_map.shape
    present = np.bincount(class_map.reshape(-1), minlength=len(classes))
    # Column-major once: every per-class mask then comes out in the order RLE reads.
    columns = np.asfortranarray(class_map)
    predictions: list[dict[str, Any]] = []
    for label in range(1, len(present)):
        if present[label] == 0:
            continue
        mask = columns == label
        entry: dict[str, Any] = {
            "label": label,
            "class_name": classes[label]["name"] if label < len(classes) else str(label),
            "rle": rle_encode(mask),
            "area": int(present[label]),
        }
        if polygons:
            entry["polygons"] = mask_polygons(mask)
        predictions.append(entry)
    out: dict[str, Any] = {"width": int(width), "height": int(height), "predictions": predictions}
    if png:
        out["png"] = base64.b64encode(
            class_map_png(class_map, [c["color"] for c in classes])
        ).decode("ascii")
    return out
