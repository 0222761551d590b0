"""Readers on files as other tools write them: COCO from pycocotools' own encoder,
LabelMe as the LabelMe tool saves it. Django-free."""
import json

import numpy as np
from pycocotools import mask as cocomask

from annotator.formats import read_coco, read_labelme, read_png
from annotator.formats import rle as rlelib
from annotator.formats.dataset import ExportClass, ExportImage
from annotator.formats.labelme import write_labelme
from tests.annotator.helpers import b64png, png, rgb_image


def _coco_doc():
    """A COCO file as a pycocotools user writes it: compressed RLE (bytes decoded to
    str), uncompressed RLE with iscrowd=1, a single polygon and a two-part polygon."""
    h, w = 20, 30
    ring = np.zeros((h, w), np.uint8)
    ring[2:12, 3:13] = 1
    ring[5:8, 6:9] = 0  # a hole
    compressed = cocomask.encode(np.asfortranarray(ring))
    compressed["counts"] = compressed["counts"].decode("ascii")
    crowd = np.zeros((h, w), np.uint8)
    crowd[15:19, 20:29] = 1
    runs = rlelib.parse_counts(rlelib.encode(crowd.astype(bool)))
    return h, w, ring, crowd, {
        "images": [{"id": 7, "file_name": "street/a.jpg", "width": w, "height": h}],
        "categories": [{"id": 3, "name": "ring"}, {"id": 9, "name": "crowd"},
                       {"id": 11, "name": "tri", "color": "#112233"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 3, "segmentation": compressed, "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 9, "iscrowd": 1,
             "segmentation": {"size": [h, w], "counts": runs}},
            {"id": 3, "image_id": 7, "category_id": 11, "iscrowd": 0,
             "segmentation": [[20.0, 1.0, 29.0, 1.0, 20.0, 10.0]]},
            {"id": 4, "image_id": 7, "category_id": 11, "iscrowd": 0,
             "segmentation": [[0, 14, 4, 14, 4, 19, 0, 19], [6, 14, 9, 14, 9, 19]]},
            {"id": 5, "image_id": 7, "category_id": 11, "bbox": [1, 1, 2, 2]},
        ],
    }


def test_coco_from_pycocotools_reads_every_segmentation_kind():
    h, w, ring, crowd, doc = _coco_doc()
    parsed = read_coco({"labels/instances_val.json": json.dumps(doc).encode()})
    assert parsed.problems == []
    [image] = parsed.images
    assert (image.file_name, image.width, image.height, image.split) == ("street/a.jpg", w, h, "val")
    assert image.data is None
    assert [i.class_name for i in image.instances] == ["ring", "crowd", "tri", "tri"]
    assert np.array_equal(rlelib.decode(image.instances[0].rle), ring.astype(bool))
    assert np.array_equal(rlelib.decode(image.instances[1].rle), crowd.astype(bool))
    polygon = cocomask.frPyObjects([[20.0, 1.0, 29.0, 1.0, 20.0, 10.0]], h, w)[0]
    assert np.array_equal(rlelib.decode(image.instances[2].rle), cocomask.decode(polygon).astype(bool))
    two = cocomask.decode(cocomask.merge(cocomask.frPyObjects(doc["annotations"][3]["segmentation"], h, w)))
    assert np.array_equal(rlelib.decode(image.instances[3].rle), two.astype(bool))
    assert [c for c in parsed.classes] == [("ring", None), ("crowd", None), ("tri", "#112233")]
    reasons = {s["reason"] for s in parsed.skipped}
    assert "no segmentation (box only)" in reasons
    assert any("iscrowd" in r for r in reasons)


def test_coco_problems_are_all_listed():
    h, w, ring, _, doc = _coco_doc()
    doc["annotations"] += [
        {"id": 10, "image_id": 99, "category_id": 3, "segmentation": [[0, 0, 1, 0, 1, 1]]},
        {"id": 11, "image_id": 7, "category_id": 42, "segmentation": [[0, 0, 1, 0, 1, 1]]},
        {"id": 12, "image_id": 7, "category_id": 3, "segmentation": [[0, 0, 31, 0, 5, 5]]},
        {"id": 13, "image_id": 7, "category_id": 3,
         "segmentation": rlelib.encode(np.ones((h + 1, w), bool))},
        {"id": 14, "image_id": 7, "category_id": 3, "segmentation": {"size": [h, w], "counts": "zzz"}},
        {"id": 15, "image_id": 7, "category_id": 3, "segmentation": [[1, 2, 3]]},
    ]
    parsed = read_coco({"a.json": json.dumps(doc).encode(), "b.json": b"{not json"})
    codes = sorted(p.code for p in parsed.problems)
    assert codes == sorted(["unknown_image_id", "unknown_category",
                            "bad_rle", "bad_rle", "bad_polygon", "bad_json"])
    assert all(p.where for p in parsed.problems)
    # a point 1 px past the border is moved onto it (a warning), not an error
    [warning] = parsed.warnings
    assert warning["where"].startswith("a.json: annotations[") and "by up to 1.00 px" in warning["message"]
    parsed = read_coco({"c.json": json.dumps({"images": []}).encode()})
    assert [p.code for p in parsed.problems] == ["bad_structure"]
    assert "annotations" in parsed.problems[0].message


def _labelme_doc(h=24, w=32, with_image=True):
    crop = np.zeros((4, 5), np.uint8)
    crop[1:3, 1:4] = 1  # LabelMe saves mask crops as uint8 0/1
    return {
        "version": "5.4.1",
        "flags": {"reviewed": False},
        "shapes": [
            {"label": "box", "points": [[5.0, 3.0], [2.0, 1.0]], "group_id": None,
             "description": "", "shape_type": "rectangle", "flags": {}, "mask": None},
            {"label": "ball", "points": [[20.0, 10.0], [20.0, 13.0]], "group_id": None,
             "description": "", "shape_type": "circle", "flags": {}, "mask": None},
            {"label": "car", "points": [[0, 20], [6, 20], [6, 23]], "group_id": 4,
             "description": "", "shape_type": "polygon", "flags": {}, "mask": None},
            {"label": "car", "points": [[10, 18], [12, 18]], "group_id": 4,
             "description": "", "shape_type": "rectangle", "flags": {}, "mask": None},
            {"label": "blob", "points": [[25.0, 2.0], [29.0, 5.0]], "group_id": None,
             "description": "", "shape_type": "mask", "flags": {}, "mask": b64png(crop)},
            {"label": "road", "points": [[0, 0], [31, 23]], "group_id": None,
             "description": "", "shape_type": "line", "flags": {}, "mask": None},
        ],
        "imagePath": "..\\photos\\scene.png",
        "imageData": b64png(rgb_image(w, h)) if with_image else None,
        "imageHeight": h,
        "imageWidth": w,
    }


def test_labelme_file_as_the_tool_writes_it():
    parsed = read_labelme({"scene.json": json.dumps(_labelme_doc()).encode()})
    assert parsed.problems == []
    [image] = parsed.images
    assert image.file_name == "scene.png" and image.data is not None
    names = [i.class_name for i in image.instances]
    assert names == ["box", "ball", "car", "blob"]  # the two car shapes are one object
    box, ball, car, blob = (rlelib.decode(i.rle) for i in image.instances)
    expected = np.zeros((24, 32), bool)
    expected[1:4, 2:6] = True  # PIL rectangle: both corners inclusive
    assert np.array_equal(box, expected)
    assert ball[10, 20] and ball[13, 20] and ball[10, 17] and not ball[14, 20] and not ball[10, 24]
    assert car[21, 5] and not car[22, 1] and car[18, 11] and not car[17, 11]
    assert blob.sum() == 6 and blob[3:5, 26:29].all()
    assert [s["reason"] for s in parsed.skipped] == ["shape_type 'line' has no area"]


def test_labelme_image_beside_the_json_and_problems():
    doc = _labelme_doc(with_image=False)
    doc["imagePath"] = "scene.png"
    files = {"set/val/scene.json": json.dumps(doc).encode(),
             "set/val/scene.png": png(rgb_image(32, 24))}
    [image] = read_labelme(files).images
    assert image.data == files["set/val/scene.png"] and image.split == "val"

    doc["shapes"][0]["points"] = [[-3, 1], [5, 3]]
    doc["shapes"][1]["shape_type"] = "banana"
    doc["shapes"][4]["points"] = [[25.0, 2.0], [30.0, 5.0]]  # crop no longer fits its box
    del doc["imageWidth"]
    parsed = read_labelme({"x.json": json.dumps(doc).encode()})
    assert [p.code for p in parsed.problems] == ["bad_image_size"]
    doc["imageWidth"] = 32
    parsed = read_labelme({"x.json": json.dumps(doc).encode()})
    assert sorted(p.code for p in parsed.problems) == ["bad_mask_size", "bad_shape"]
    assert parsed.images[0].failed
    assert [w["where"] for w in parsed.warnings] == ["x.json: shapes[0]"]


def test_labelme_writer_output_reads_back_exactly():
    rng = np.random.default_rng(3)
    masks = [rng.random((17, 13)) < 0.3 for _ in range(3)]
    classes = [ExportClass(0, "a", "#ff0000"), ExportClass(1, "b", "#00ff00")]
    image = ExportImage("img.png", 13, 17, "train", [(i % 2, rlelib.encode(m)) for i, m in enumerate(masks)],
                        data=png(rgb_image(13, 17)))
    doc = write_labelme(image, classes, image_path="img.png", embed_image=True)
    assert set(doc) == {"version", "flags", "shapes", "imagePath", "imageData", "imageHeight", "imageWidth"}
    parsed = read_labelme({"img.json": json.dumps(doc).encode()})
    assert parsed.problems == []
    got = [(i.class_name, rlelib.decode(i.rle)) for i in parsed.images[0].instances]
    assert [n for n, _ in got] == ["a", "b", "a"]
    assert all(np.array_equal(g, m) for (_, g), m in zip(got, masks, strict=True))


def test_png_reader_refuses_unknown_values_and_rgb_masks():
    classes = json.dumps([{"index": 0, "name": "background"}, {"index": 1, "name": "cat"}]).encode()
    labels = np.zeros((4, 5), np.uint8)
    labels[1, 1], labels[2, 2], labels[3, 3] = 1, 7, 255
    rgb = np.zeros((4, 5, 3), np.uint8)
    parsed = read_png({"classes.json": classes, "masks/train/a.png": png(labels),
                       "masks/train/b.png": png(rgb)})
    assert sorted(p.code for p in parsed.problems) == ["bad_mask", "unknown_label"]
    labels[2, 2] = 0
    parsed = read_png({"classes.json": classes, "masks/val/a.png": png(labels)})
    [image] = parsed.images
    assert image.split == "val" and [i.class_name for i in image.instances] == ["cat", "__ignore__"]
    # 255 goes to the project's ignore class, not to a class of its own
    assert [rlelib.area(i.rle) for i in image.instances] == [1, 1] and parsed.classes == [("cat", None)]
