"""The mask codecs: COCO RLE as pycocotools writes it (the server's format), and the PNG
writer; no server needed."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tessera import rle_decode, rle_encode
from tessera.png import encode_png
from tessera.rle import class_map, masks_from_class_map


def test_rle_matches_strings_written_by_pycocotools():
    # Reference strings from pycocotools.mask.encode (column-major runs, compressed).
    m = np.zeros((6, 5), np.uint8)
    m[1:4, 2:5] = 1
    m[5, 0] = 1
    assert rle_encode(m) == {"size": [6, 5], "counts": "5172L000O"}
    big = np.zeros((300, 400), np.uint8)
    big[50:250, 100:390] = 1
    big[0, 0] = 1
    encoded = rle_encode(big)
    assert encoded["counts"].startswith("01Q[m0W6ShRO0000") and encoded["counts"].endswith("0Vl2")
    assert (rle_decode(encoded) == big.astype(bool)).all()


@pytest.mark.parametrize("seed", range(40))
def test_rle_round_trip(seed):
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(1, 90, 2))
    mask = rng.random((h, w)) < rng.random()
    if seed % 5 == 0:
        mask[:] = bool(seed % 2)  # all empty / all full
    encoded = rle_encode(mask)
    assert encoded["size"] == [h, w]
    assert (rle_decode(encoded) == mask).all()


def test_rle_decode_accepts_uncompressed_counts_and_rejects_wrong_totals():
    assert rle_decode({"size": [2, 2], "counts": [1, 2, 1]}).tolist() == [[False, True], [True, False]]
    with pytest.raises(ValueError):
        rle_decode({"size": [2, 2], "counts": [1, 2]})


def test_class_map_and_back():
    a = np.zeros((4, 5), bool)
    a[0, :2] = True
    b = np.zeros((4, 5), bool)
    b[3, 3:] = True
    cmap = class_map([(1, a), (2, b)], (4, 5), dtype=np.uint8)
    assert cmap.sum() == 2 * 1 + 2 * 2
    back = masks_from_class_map(cmap)
    assert set(back) == {1, 2} and (back[1] == a).all() and (back[2] == b).all()


@pytest.mark.parametrize("shape", [(7, 9), (7, 9, 3)])
def test_png_writer_is_read_back_exactly(shape):
    image = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    read = np.asarray(Image.open(io.BytesIO(encode_png(image))))
    assert (read == image).all()


def test_palette_png_keeps_indices_and_colours():
    index = np.array([[0, 1], [2, 1]], np.uint8)
    img = Image.open(io.BytesIO(encode_png(index, palette=[(0, 0, 0), (255, 0, 0), (0, 0, 255)])))
    assert img.mode == "P"
    assert (np.asarray(img) == index).all()
    assert img.getpalette()[:9] == [0, 0, 0, 255, 0, 0, 0, 0, 255]
