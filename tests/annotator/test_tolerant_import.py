"""Imports repair what the labeling tools themselves accept (issue 16.1), detect the
format (16.3) and inspect zips without inflating them in the web process (15.4).

The LabelMe fixtures are shaped like files LabelMe writes: a click on the border of a
500x375 image stores y = 375.38; the reference masks are drawn the way LabelMe's
``shape_to_mask`` draws them (PIL polygon / rectangle / ellipse, outline and fill, on
the image canvas, which clips what lies outside)."""
from __future__ import annotations

import io
import json
import math
import tracemalloc
import zipfile

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw

from annotator import services
from annotator.formats import rle as rlelib
from annotator.formats.dataset import ArchiveLimits, UploadError, open_upload
from annotator.models import MaskSet
from projects.models import Asset, Job, LabelClass
from tests import factories
from tests.annotator.helpers import png, rgb_image, zip_bytes

pytestmark = pytest.mark.django_db

W, H = 500, 375


def _shape(label, points, kind="polygon", group=None):
    return {"label": label, "points": points, "group_id": group, "description": "",
            "shape_type": kind, "flags": {}, "mask": None}


def _labelme(image_path, shapes, width=W, height=H):
    return {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": image_path,
            "imageData": None, "imageHeight": height, "imageWidth": width}


def _reference_mask(shape, width=W, height=H) -> np.ndarray:
    """LabelMe's shape_to_mask: PIL on the full canvas, points as written."""
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    points = [tuple(p) for p in shape["points"]]
    if shape["shape_type"] == "polygon":
        draw.polygon(points, outline=1, fill=1)
    elif shape["shape_type"] == "rectangle":
        draw.rectangle(points, outline=1, fill=1)
    else:
        (cx, cy), (px, py) = points
        r = math.hypot(cx - px, cy - py)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=1, fill=1)
    return np.asarray(canvas, bool)


STREET = [
    _shape("car", [[120.5, 300.2], [260.1, 296.0], [262.3, 375.38], [118.0, 375.38]]),  # 0.38 px past
    _shape("person", [[430.2, 100.7], [500.4, 374.9]], "rectangle"),  # 0.4 px past the right edge
    _shape("ball", [[20.0, 20.0], [20.0, 45.0]], "circle"),  # radius 25 around (20, 20): past two edges
    _shape("__ignore__", [[300.0, 10.0], [350.0, 10.0], [350.0, 60.0], [300.0, 60.0]]),
    _shape("car", [[520.0, 10.0], [600.0, 10.0], [600.0, 90.0]]),  # wholly outside
    _shape("car", [[10.0, 10.0], [50.0, 50.0], [90.0, 90.0]]),  # collinear: zero area
    _shape("car", [[10.0, 10.0], [10.0, 10.0], [40.0, 40.0]]),  # two distinct points
    _shape("lane", [[0.0, 200.0], [499.0, 210.0]], "linestrip"),  # no area
]


def _street_zip(extra: dict | None = None) -> bytes:
    image = png(rgb_image(W, H, seed=7))
    files = {"val/street.json": json.dumps(_labelme("street.png", STREET)).encode(),
             "val/street.png": image,
             # the same image labeled twice (a copy of the file under another name)
             "val/street_copy.json": json.dumps(_labelme("street.png", STREET[:1])).encode()}
    return zip_bytes({**files, **(extra or {})})


def _start(project, data, name="set.zip", **kwargs) -> Job:
    return services.import_start(project=project, user=factories.owner_of(project), name=name,
                                 data=data, **kwargs)


def _run(project, data, **kwargs) -> Job:
    job = _start(project, data, **kwargs)
    services.import_run(job=job)
    job.refresh_from_db()
    return job


def test_labelme_files_as_written_are_repaired_and_match_labelme_drawing():
    project = factories.project_create()
    job = _run(project, _street_zip())
    assert job.status == Job.Status.SUCCEEDED, job.errors
    report = job.result
    assert report["format"] == {"name": "labelme", "title": "LabelMe", "detected": True,
                                "reason": report["format"]["reason"]}
    assert "shapes" in report["format"]["reason"]
    warnings = {w["where"]: w["message"] for w in report["warnings"]}
    assert "by up to 0.38 px" in warnings["val/street.json: shapes[0]"]
    assert "by up to 0.40 px" in warnings["val/street.json: shapes[1]"]
    assert "extends past" in warnings["val/street.json: shapes[2]"]
    skipped = {s["where"]: s["reason"] for s in report["skipped"]}
    assert "wholly outside" in skipped["val/street.json: shapes[4]"]
    assert "zero area" in skipped["val/street.json: shapes[5]"]
    assert "fewer than 3 distinct points" in skipped["val/street.json: shapes[6]"]
    assert "no area" in skipped["val/street.json: shapes[7]"]
    assert "already labeled by val/street.json" in next(
        r for w, r in skipped.items() if w.startswith("val/street_copy.json"))
    assert report["counts"] == {"imported_images": 1, "imported_objects": 4, "repaired": 4,
                                "skipped": 5, "left_out": 0}
    assert job.message == "Imported 4 objects on 1 images (4 repaired, 5 skipped)."

    asset = Asset.objects.get(project=project)
    names = dict(LabelClass.objects.filter(project=project).values_list("id", "name"))
    got = [(names[m["class_id"]], rlelib.decode(m["rle"]))
           for m in MaskSet.objects.get(asset=asset).revision.instances]
    assert sorted(n for n, _ in got) == ["__ignore__", "ball", "car", "person"]
    for name, mask in got:
        shape = next(s for s in STREET if s["label"] == name)
        reference = _reference_mask(shape)
        assert (mask == reference).mean() >= 0.99, name
        # only the edge pixels may differ
        assert (mask ^ reference).sum() <= 2 * (W + H), name


def test_errors_refuse_the_import_unless_the_rest_is_asked_for():
    project = factories.project_create()
    broken = _labelme("other.png", [_shape("car", [[1, 1], [5, 1], [5, 5]]),
                                    _shape("car", [[1, 1], [5, 1], [5, 5]], "banana")], 40, 30)
    data = _street_zip({"train/other.json": json.dumps(broken).encode(),
                        "train/other.png": png(rgb_image(40, 30, seed=8)),
                        "train/unreadable.json": b"{not json"})
    refused = _run(project, data)
    assert refused.status == Job.Status.FAILED
    assert sorted((e["code"], e["where"]) for e in refused.errors) == [
        ("bad_json", "train/unreadable.json"), ("bad_shape", "train/other.json: shapes[1]")]
    assert not Asset.objects.filter(project=project).exists()

    job = _run(project, data, on_error="skip")
    assert job.status == Job.Status.SUCCEEDED, job.errors
    # other.png had an error: left out whole (never imported with an object missing)
    assert list(Asset.objects.filter(project=project).values_list("name", flat=True)) == ["street.png"]
    assert sorted(p["code"] for p in job.result["left_out"]) == ["bad_json", "bad_shape"]
    assert job.result["counts"]["left_out"] == 2
    assert job.params["on_error"] == "skip"


def test_coco_points_past_the_border_and_duplicates(settings):
    project = factories.project_create()
    image = png(rgb_image(W, H, seed=9))
    doc = {"images": [{"id": 1, "file_name": "street.png", "width": W, "height": H},
                      {"id": 2, "file_name": "street.png", "width": W, "height": H}],
           "categories": [{"id": 3, "name": "car"}],
           "annotations": [
               {"id": 1, "image_id": 1, "category_id": 3, "iscrowd": 0,
                "segmentation": [[120.5, 300.2, 260.1, 296.0, 262.3, 375.38, 118.0, 375.38]]},
               {"id": 2, "image_id": 1, "category_id": 3, "iscrowd": 0,
                "segmentation": [[520, 10, 600, 10, 600, 90]]},
               {"id": 3, "image_id": 2, "category_id": 3, "iscrowd": 0,
                "segmentation": [[1, 1, 9, 1, 9, 9]]}]}
    job = _run(project, zip_bytes({"annotations/instances_val.json": json.dumps(doc).encode(),
                                   "images/val/street.png": image}))
    assert job.status == Job.Status.SUCCEEDED, job.errors
    assert job.result["counts"]["imported_objects"] == 1 and job.result["counts"]["repaired"] == 1
    skipped = [s["reason"] for s in job.result["skipped"]]
    assert any("wholly outside" in r for r in skipped) and any("already listed" in r for r in skipped)
    assert job.result["format"]["name"] == "coco" and job.result["format"]["detected"]


def test_format_detection_and_a_wrong_explicit_choice(client_for):
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    url = f"/api/v1/projects/{project.id}/imports/"
    data = _street_zip()
    response = client.post(url, {"file": SimpleUploadedFile("set.zip", data), "format": "coco"},
                           format="multipart")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "wrong_format"
    assert error["message"].startswith("This upload looks like LabelMe, not COCO")
    assert error["details"]["detected"]["name"] == "labelme"
    response = client.post(url, {"file": SimpleUploadedFile("notes.zip", zip_bytes({"a.txt": b"hi"}))},
                           format="multipart")
    assert response.status_code == 400 and response.json()["error"]["code"] == "unknown_format"
    response = client.post(url, {"file": SimpleUploadedFile("set.zip", data)}, format="multipart")
    assert response.status_code == 202, response.json()
    params = response.json()["params"]
    assert params["format"] == "labelme" and params["format_given"] is False
    assert "shapes" in params["detected"]["reason"]


def _bomb(size: int, name: str = "bomb.bin") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open(name, "w", force_zip64=True) as member:
            chunk = b"\0" * (16 << 20)
            for _ in range(size // len(chunk)):
                member.write(chunk)
        archive.writestr("val/street.json", json.dumps(_labelme("street.png", STREET[:1])).encode())
    return out.getvalue()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return _bomb(512 << 20)  # 512 MiB of zeros in ~2.3 MB


def _peak_mib(work) -> tuple[object, float]:
    tracemalloc.start()
    try:
        try:
            result = work()
        except Exception as exc:  # noqa: BLE001 - the answer is part of what is measured
            result = exc
        return result, tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_a_zip_bomb_is_refused_from_its_directory_without_inflating(client_for, bomb):
    assert len(bomb) < 3 * 2**20
    project = factories.project_create()
    response, peak = _peak_mib(lambda: client_for(factories.owner_of(project)).post(
        f"/api/v1/projects/{project.id}/imports/",
        {"file": SimpleUploadedFile("bomb.zip", bomb)}, format="multipart"))
    assert response.status_code == 400
    assert "zip bomb" in response.json()["error"]["message"]
    assert peak < 64, peak  # the declared 512 MiB were never inflated
    with pytest.raises(UploadError, match="limit for such a file"):
        open_upload("x.zip", bomb, limits=ArchiveLimits(max_member_bytes=100 << 20, max_ratio=1e9))
    with pytest.raises(UploadError, match="unpacks to"):
        open_upload("x.zip", bomb, limits=ArchiveLimits(max_total_bytes=100 << 20, max_ratio=1e9))


def test_members_are_inflated_one_at_a_time_when_asked_for(settings, bomb):
    """With the ratio limit lifted the same zip is accepted; neither the web process
    (detection peeks at the small label file only) nor the reader touches the big member."""
    settings.TESSERA_IMPORT_MAX_RATIO = 1e9
    project = factories.project_create()
    job, peak = _peak_mib(lambda: _start(project, bomb))
    assert isinstance(job, Job), job
    assert peak < 64, peak
    job.refresh_from_db()
    (_, peak) = _peak_mib(lambda: services.import_run(job=job))
    assert peak < 64, peak
    job.refresh_from_db()
    assert job.result["format"]["name"] == "labelme"  # it ran: street.png is not in the zip
    assert [e["code"] for e in job.errors] == ["unknown_image"]


def test_labelme_memory_does_not_grow_with_the_number_of_shapes():
    """Each shape keeps only the box around it: 40 objects on a 4000x4000 image hold
    crops, not 40 full-size masks (640 MB)."""
    from annotator.formats.labelme import read_labelme

    shapes = [_shape("car", [[100.0 * n, 10.0], [100.0 * n + 50, 10.0], [100.0 * n + 25, 60.0]])
              for n in range(40)]
    doc = json.dumps(_labelme("big.png", shapes, 4000, 4000)).encode()
    parsed, peak = _peak_mib(lambda: read_labelme({"big.json": doc}))
    assert len(parsed.images[0].instances) == 40 and not parsed.problems
    assert peak < 100, peak


@pytest.fixture
def declared_limits_restored():
    from annotator.formats import dataset

    before = (dataset.MAX_DECLARED_PIXELS, dataset.MAX_DECLARED_SIDE)
    yield
    dataset.set_declared_limits(max_pixels=before[0], max_side=before[1])


def test_declared_sizes_are_checked_before_anything_is_drawn(settings, declared_limits_restored):
    """The limits are the upload limits from the settings; a refused image is one error
    (its annotations are not reported again)."""
    from annotator.formats.coco import read_coco

    settings.TESSERA_MAX_IMAGE_SIDE = 1000
    project = factories.project_create()
    doc = {"images": [{"id": 1, "file_name": "a.png", "width": 1001, "height": 10}],
           "categories": [{"id": 1, "name": "x"}],
           "annotations": [{"id": n, "image_id": 1, "category_id": 1,
                            "segmentation": [[0, 0, 5, 0, 5, 5]]} for n in range(3)]}
    job = _run(project, json.dumps(doc).encode(), name="a.json")
    assert [(e["code"], e["where"]) for e in job.errors] == [("image_too_large", "a.json: images[0]")]
    assert "1000 px a side" in job.errors[0]["message"]
    parsed = read_coco({"a.json": json.dumps({**doc, "images": [
        {"id": 1, "file_name": "a.png", "width": 10**9, "height": True}]}).encode()})
    assert [p.code for p in parsed.problems] == ["bad_image_size"]


def test_uploads_too_large_to_peek_at_are_detected_by_the_job(settings):
    settings.TESSERA_IMPORT_PEEK_BYTES = 1000
    project = factories.project_create()
    job = _start(project, _street_zip())  # its label files are more than 1000 bytes together
    assert job.params["format"] is None and job.params["detected"] is None
    services.import_run(job=job)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.errors
    assert job.result["format"]["name"] == "labelme" and job.result["format"]["detected"]
    assert "shapes" in job.result["format"]["reason"]


def test_png_masks_are_checked_by_their_header_size(declared_limits_restored):
    from annotator.formats import dataset
    from annotator.formats.png import read_png

    dataset.set_declared_limits(max_pixels=10_000, max_side=200)
    classes = json.dumps([{"index": 0, "name": "background"}, {"index": 1, "name": "cat"}]).encode()
    parsed = read_png({"classes.json": classes,
                       "masks/train/wide.png": png(np.zeros((1, 201), np.uint8)),
                       "masks/train/big.png": png(np.zeros((101, 100), np.uint8)),
                       "masks/train/ok.png": png(np.ones((100, 100), np.uint8))})
    assert sorted((p.code, p.where) for p in parsed.problems) == [
        ("image_too_large", "masks/train/big.png"), ("image_too_large", "masks/train/wide.png")]
    assert [i.source for i in parsed.images] == ["masks/train/ok.png"]
