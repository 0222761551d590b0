"""Class maps -> COCO RLE per class, polygons and palette PNG, all decodable back."""

from __future__ import annotations

import base64
import io

import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from deployments.runtime.encoding import encode_class_map, rle_decode, rle_encode

CLASSES = [
    {"index": 0, "name": "background", "color": "#000000"},
    {"index": 1, "name": "cat", "color": "#ff0000"},
    {"index": 2, "name": "dog", "color": "#00ff00"},
    {"index": 3, "name": "bird", "color": "#0000ff"},
]


def _class_map() -> np.ndarray:
    class_map = np.zeros((40, 60), np.uint8)
    class_map[5:15, 10:30] = 1  # 10 x 20 rectangle
    class_map[20:35, 40:55] = 3
    cv2.circle(class_map, (15, 28), 6, 3, thickness=-1)  # a second region of class 3
    return class_map


def test_rle_round_trip_and_coco_compatibility() -> None:
    mask = _class_map() == 3
    rle = rle_encode(mask)
    assert rle["size"] == [40, 60] and isinstance(rle["counts"], str)
    assert np.array_equal(rle_decode(rle), mask)
    coco = {"size": rle["size"], "counts": rle["counts"].encode()}
    assert int(mask_utils.area(coco)) == int(mask.sum())


def test_encode_class_map_lists_present_classes_with_area_and_rle() -> None:
    class_map = _class_map()
    out = encode_class_map(class_map, CLASSES)
    assert (out["width"], out["height"]) == (60, 40)
    assert [p["label"] for p in out["predictions"]] == [
        1,
        3,
    ]  # "dog" absent, background never listed
    assert [p["class_name"] for p in out["predictions"]] == ["cat", "bird"]
    rebuilt = np.zeros_like(class_map)
    for pred in out["predictions"]:
        mask = rle_decode(pred["rle"])
        assert pred["area"] == int(mask.sum()) == int((class_map == pred["label"]).sum())
        rebuilt[mask] = pred["label"]
    assert np.array_equal(rebuilt, class_map)
    assert out["predictions"][0]["area"] == 200
    assert "png" not in out and "polygons" not in out["predictions"][0]


def test_polygons_outline_each_region() -> None:
    class_map = _class_map()
    out = encode_class_map(class_map, CLASSES, polygons=True)
    cat, bird = out["predictions"]
    assert len(cat["polygons"]) == 1 and len(bird["polygons"]) == 2
    x, y = np.array(cat["polygons"][0]).reshape(-1, 2).T
    assert (x.min(), x.max(), y.min(), y.max()) == (10, 29, 5, 14)
    filled = np.zeros_like(class_map)
    for poly in bird["polygons"]:
        cv2.fillPoly(filled, [np.array(poly, np.int32).reshape(-1, 2)], 1)
    truth = class_map == 3
    iou = (truth & (filled > 0)).sum() / (truth | (filled > 0)).sum()
    assert iou > 0.97


def test_png_is_a_palette_image_of_the_class_map() -> None:
    class_map = _class_map()
    out = encode_class_map(class_map, CLASSES, png=True)
    image = Image.open(io.BytesIO(base64.b64decode(out["png"])))
    assert image.format == "PNG" and image.mode == "P"
    assert np.array_equal(np.asarray(image), class_map)
    palette = image.getpalette()
    assert palette[3:6] == [255, 0, 0] and palette[9:12] == [0, 0, 255]


def test_the_runtime_uses_the_one_checked_codec_and_stays_django_free() -> None:
    import subprocess
    import sys

    from annotator.formats import rle as rlelib

    assert (rle_encode, rle_decode) == (rlelib.encode, rlelib.decode)
    code = ("import sys, deployments.runtime.encoding; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework', 'celery')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
