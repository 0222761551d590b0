"""A minimal PNG writer (8-bit grayscale, palette or RGB), so that writing masks needs
no imaging library."""
from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(image: np.ndarray, palette: Sequence[tuple[int, int, int]] | None = None) -> bytes:
    """``(H, W)`` uint8 (grayscale, or palette indices when ``palette`` is given) or
    ``(H, W, 3)`` uint8 RGB -> PNG bytes."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        if image.size and (image.min() < 0 or image.max() > 255):
            raise ValueError("PNG masks hold values 0..255")
        image = image.astype(np.uint8)
    if image.ndim == 2:
        color_type = 3 if palette is not None else 0
    elif image.ndim == 3 and image.shape[2] == 3:
        color_type = 2
    else:
        raise ValueError(f"cannot write an image of shape {image.shape} as PNG")
    height, width = image.shape[:2]
    rows = image.reshape(height, -1)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()  # filter 0
    parts = [b"\x89PNG\r\n\x1a\n",
             _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0))]
    if color_type == 3:
        colors = list(palette or [])[:256]
        colors += [(0, 0, 0)] * (int(image.max(initial=0)) + 1 - len(colors))
        parts.append(_chunk(b"PLTE", bytes(int(c) & 0xFF for rgb in colors for c in rgb)))
    parts += [_chunk(b"IDAT", zlib.compress(raw, 6)), _chunk(b"IEND", b"")]
    return b"".join(parts)


def write_png(path: str | Path, image: np.ndarray,
              palette: Sequence[tuple[int, int, int]] | None = None) -> Path:
    path = Path(path)
    path.write_bytes(encode_png(image, palette))
    return path


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    color = color.lstrip("#")
    if len(color) == 3:
        color = "".join(ch * 2 for ch in color)
    return int(color[0:2], 16), int(color[2:4], 16), int(color[4:6], 16)
