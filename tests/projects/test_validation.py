"""decode_rgb: the OpenCV fast path for plain PNGs gives Pillow's pixels and Pillow's
verdicts, on every PNG kind and on damaged data."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from projects.validation import UploadRejected, decode_rgb

LIMITS = {"max_bytes": 10_000_000, "max_pixels": 10_000_000, "max_side": 10_000}


def _pillow_rgb(data: bytes) -> np.ndarray:
    """Pillow alone: upright, RGB; UploadRejected where it cannot decode."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except OSError as exc:
        raise UploadRejected("corrupt_image", str(exc)) from None
    return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def _png(mode: str, **save) -> bytes:
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)
    rgba[:10] = 40  # a flat band: filters and compression of other kinds
    if mode == "I;16":
        image = Image.fromarray(rgba[..., 0].astype(np.uint16) * 257)
    else:
        image = Image.fromarray(rgba, "RGBA").convert(mode)
    out = io.BytesIO()
    image.save(out, "PNG", **save)
    return out.getvalue()


def _rotated_png() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return _png("RGB", exif=exif)


@pytest.mark.parametrize("data", [
    _png("RGB"), _png("RGBA"), _png("L"), _png("LA"), _png("P"), _png("I;16"),
    _png("RGB", optimize=True), _png("RGB", compress_level=0), _rotated_png(),
], ids=["rgb", "rgba", "grey", "grey-alpha", "palette", "grey16", "optimized", "stored",
        "exif-rotated"])
def test_same_pixels_as_pillow(data):
    expected = _pillow_rgb(data)
    got = decode_rgb(data, **LIMITS)
    assert got.dtype == np.uint8 and got.shape == expected.shape
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("cut", [1, 12, 30, 200, 2000])
def test_damaged_data_gets_pillows_verdict(cut):
    data = _png("RGB")[:-cut]
    try:
        expected = _pillow_rgb(data)
    except UploadRejected as exc:
        with pytest.raises(UploadRejected) as got:
            decode_rgb(data, **LIMITS)
        assert got.value.code == exc.code
    else:  # Pillow accepts a PNG that only lacks its IEND chunk; libpng does not
        assert np.array_equal(decode_rgb(data, **LIMITS), expected)
    flipped = bytearray(_png("RGB"))
    flipped[len(flipped) // 2] ^= 0xFF
    with pytest.raises(UploadRejected):
        decode_rgb(bytes(flipped), **LIMITS)
