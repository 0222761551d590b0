"""The newer readers on hand-made edge cases: what they repair (a warning), skip, and
refuse (a problem, with its place), and sizes checked before anything is decoded."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from annotator.formats import rle as rlelib
from annotator.formats.cvat import read_cvat
from annotator.formats.dataset import IGNORE_CLASS
from annotator.formats.label_studio import brush_decode, brush_encode, read_label_studio
from annotator.formats.roboflow import read_roboflow
from annotator.formats.semantic_png import read_semantic_png, voc_color
from tests.annotator.helpers import png, rgb_image


def _png(array: np.ndarray, mode: str | None = None, palette: list[int] | None = None) -> bytes:
    image = Image.fromarray(array, mode=mode) if mode else Image.fromarray(array)
    if palette:
        image.putpalette(palette)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


# --- semantic PNG --------------------------------------------------------------------
def test_cityscapes_standard_table_and_its_ignored_labels():
    ids = np.full((6, 8), 7, np.uint8)  # road
    ids[0, :] = 1  # ego vehicle: left out of evaluation -> ignore
    ids[5, :4] = 26  # car
    parsed = read_semantic_png({
        "gtFine/val/aachen/aachen_000000_000019_gtFine_labelIds.png": _png(ids),
        "leftImg8bit/val/aachen/aachen_000000_000019_leftImg8bit.png": png(rgb_image(8, 6)),
    })
    assert not parsed.problems
    [image] = parsed.images
    assert image.split == "val" and image.file_name == "aachen_000000_000019_leftImg8bit.png"
    areas = {i.class_name: rlelib.area(i.rle) for i in image.instances}
    assert areas == {"road": 36, "car": 4, IGNORE_CLASS: 8}
    assert ("road", "#804080") in parsed.classes and ("person", "#dc143c") in parsed.classes


def test_voc_without_labelmap_uses_the_voc_classes_and_refuses_unknown_colours():
    labels = np.zeros((4, 5), np.uint8)
    labels[1, 1] = 15
    palette = [v for i in range(256) for v in voc_color(i)]
    parsed = read_semantic_png({"SegmentationClass/x.png": _png(labels, "P", palette)})
    assert [(i.class_name, rlelib.area(i.rle)) for i in parsed.images[0].instances] == [("person", 1)]
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[2, 2] = (1, 2, 3)
    parsed = read_semantic_png({"SegmentationClass/y.png": _png(rgb)})
    assert [p.code for p in parsed.problems] == ["unknown_color"] and not parsed.images


def test_a_class_map_declaring_a_huge_size_is_refused_before_decoding(monkeypatch):
    from annotator.formats import dataset

    monkeypatch.setattr(dataset, "MAX_DECLARED_PIXELS", 10)
    parsed = read_semantic_png({"SegmentationClass/x.png": _png(np.zeros((4, 5), np.uint8))})
    assert [p.code for p in parsed.problems] == ["image_too_large"]


# --- CVAT ----------------------------------------------------------------------------
def _cvat(shapes: str, size: str = 'width="10" height="8"') -> dict[str, bytes]:
    return {"annotations.xml": (f'<?xml version="1.0"?><annotations><version>1.1</version>'
                                f'<image id="0" name="a.png" {size}>{shapes}</image></annotations>').encode()}


def test_cvat_mask_box_reaching_past_the_image_is_clipped_and_bad_rle_refused():
    parsed = read_cvat(_cvat('<mask label="car" rle="0, 4" left="8" top="6" width="2" height="2"/>'
                             '<mask label="car" rle="0, 4" left="9" top="7" width="2" height="2"/>'))
    assert not parsed.problems and len(parsed.warnings) == 1
    [first, second] = parsed.images[0].instances
    assert rlelib.area(first.rle) == 4 and rlelib.area(second.rle) == 1
    parsed = read_cvat(_cvat('<mask label="car" rle="1, 2" left="0" top="0" width="2" height="2"/>'))
    assert [p.code for p in parsed.problems] == ["bad_rle"]


def test_cvat_groups_degenerate_shapes_and_unsafe_xml():
    parsed = read_cvat(_cvat(
        '<polygon label="car" points="0,0;4,0;4,4;0,4" group_id="3"/>'
        '<box label="car" xtl="6" ytl="0" xbr="9" ybr="3" group_id="3"/>'
        '<polygon label="car" points="1,1;2,2;3,3"/>'  # no area
        '<polyline label="lane" points="0,0;5,5"/>'))
    assert not parsed.problems
    [obj] = parsed.images[0].instances
    assert rlelib.area(obj.rle) == 16 + 9
    assert len(parsed.skipped) == 2
    bomb = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xx">]><annotations>&x;</annotations>'
    assert [p.code for p in read_cvat({"a.xml": bomb}).problems] == ["bad_xml"]
    assert [p.code for p in read_cvat(_cvat("", 'width="0" height="8"')).problems] == ["bad_image_size"]


# --- Label Studio --------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(mask=arrays(np.bool_, st.tuples(st.integers(1, 30), st.integers(1, 30))))
def test_brush_codec_round_trips(mask):
    assert np.array_equal(brush_decode(brush_encode(mask), *mask.shape), mask)


def _task(result: list, image: str = "/data/upload/1/0a1b2c3d-a.png") -> dict[str, bytes]:
    return {"export.json": json.dumps([{"id": 1, "data": {"image": image},
                                        "annotations": [{"result": result}]}]).encode(),
            "a.png": png(rgb_image(10, 8))}


def test_label_studio_brush_of_the_wrong_size_is_refused():
    result = [{"type": "brushlabels", "original_width": 10, "original_height": 8,
               "value": {"format": "rle", "rle": brush_encode(np.ones((8, 9), bool)), "brushlabels": ["car"]}}]
    parsed = read_label_studio(_task(result))
    assert [p.code for p in parsed.problems] == ["bad_rle"] and "288 values" in parsed.problems[0].message


def test_label_studio_rectangle_rotation_and_prefixed_names():
    result = [{"type": "rectanglelabels", "original_width": 10, "original_height": 8,
               "value": {"x": 0, "y": 0, "width": 50, "height": 50, "rotation": 0,
                         "rectanglelabels": ["box"]}}]
    parsed = read_label_studio(_task(result))
    [image] = parsed.images
    assert image.file_name == "a.png" and image.data is not None  # the 0a1b2c3d- prefix is dropped
    assert rlelib.area(image.instances[0].rle) == 5 * 4
    result[0]["value"]["rotation"] = 90  # about the top-left corner: now left of x = 0
    parsed = read_label_studio(_task(result))
    assert parsed.images[0].instances == [] and parsed.skipped


# --- Roboflow ------------------------------------------------------------------------
@pytest.mark.parametrize("root_id", [0, 17])
def test_roboflow_root_category_is_no_class(root_id):
    doc = {"categories": [{"id": root_id, "name": "cells", "supercategory": "none"},
                          {"id": 3, "name": "cell", "supercategory": "cells"}],
           "images": [{"id": 0, "file_name": "a.png", "width": 10, "height": 8}],
           "annotations": [{"id": 0, "image_id": 0, "category_id": 3, "iscrowd": 0,
                            "segmentation": [[1, 1, 5, 1, 5, 5]]}]}
    parsed = read_roboflow({"train/_annotations.coco.json": json.dumps(doc).encode(),
                            "train/a.png": png(rgb_image(10, 8))})
    assert parsed.classes == [("cell", None)] and not parsed.problems
    assert parsed.images[0].split == "train" and parsed.images[0].data is not None
