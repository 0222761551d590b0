"""Imports are all or nothing (malformed files leave the project exactly as before,
with every problem listed); exports open in pycocotools; the API answers 400 for
structural errors and streams zips."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from pycocotools.coco import COCO

from annotator import services
from annotator.formats import rle as rlelib
from annotator.models import MaskRevision, MaskSet
from projects.models import Asset, Job, LabelClass, Role
from tests import factories
from tests.annotator.helpers import png, rgb_image, unzip, zip_bytes

pytestmark = pytest.mark.django_db


def _stored_files() -> set[str]:
    found, stack = set(), [""]
    while stack:
        base = stack.pop()
        if not default_storage.exists(base or "."):
            continue
        dirs, files = default_storage.listdir(base)
        found |= {f"{base}/{f}".lstrip("/") for f in files}
        stack += [f"{base}/{d}".lstrip("/") for d in dirs]
    return {f for f in found if not f.startswith("imports/")}


def _snapshot(project) -> dict:
    return {
        "assets": sorted(Asset.objects.filter(project=project).values_list("id", "name", "status")),
        "classes": sorted(LabelClass.objects.filter(project=project).values_list("id", "name", "index")),
        "revisions": sorted(MaskRevision.objects.filter(asset__project=project).values_list("id", "number")),
        "sets": sorted(MaskSet.objects.filter(asset__project=project).values_list("asset_id", "revision_id")),
        "files": _stored_files(),
    }


@pytest.fixture
def labeled_project():
    project = factories.project_create(ann=Role.ANNOTATOR)
    cls = factories.label_class_create(project, name="road")
    asset = factories.asset_create(project, width=30, height=20, seed=1)
    Asset.objects.filter(pk=asset.pk).update(name="a.png")
    mask = np.zeros((20, 30), bool)
    mask[2:5, 2:9] = True
    services.mask_set_replace_from_arrays(asset=Asset.objects.get(pk=asset.pk), user=None,
                                          instances=[(cls, mask)])
    return project


def _coco(annotations, images=None):
    return {"images": images or [{"id": 1, "file_name": "a.png", "width": 30, "height": 20}],
            "categories": [{"id": 1, "name": "road"}, {"id": 2, "name": "new-class"}],
            "annotations": annotations}


def _run(project, name, data, format="coco") -> Job:
    job = services.import_start(project=project, user=factories.owner_of(project), name=name,
                                data=data, format=format)
    services.import_run(job=job)
    job.refresh_from_db()
    return job


GOOD = {"id": 1, "image_id": 1, "category_id": 2, "segmentation": [[1, 1, 10, 1, 10, 8]]}


@pytest.mark.parametrize(("case", "payload", "codes"), [
    ("unknown image", lambda: _coco([GOOD], images=[
        {"id": 1, "file_name": "a.png", "width": 30, "height": 20},
        {"id": 2, "file_name": "nope.png", "width": 30, "height": 20}]), ["unknown_image"]),
    ("RLE of the wrong size", lambda: _coco([GOOD, {**GOOD, "segmentation": rlelib.encode(np.ones((21, 30), bool))}]),
     ["bad_rle"]),
    ("labels for another size", lambda: _coco([GOOD], images=[
        {"id": 1, "file_name": "a.png", "width": 31, "height": 20}]), ["size_mismatch"]),
    ("several problems at once", lambda: _coco([
        GOOD, {**GOOD, "category_id": 9}, {**GOOD, "image_id": 5},
        {**GOOD, "segmentation": {"size": [20, 30], "counts": "zzz"}}]),
     ["bad_rle", "unknown_category", "unknown_image_id"]),
])
def test_malformed_import_fails_with_every_problem_and_changes_nothing(labeled_project, case, payload, codes):
    before = _snapshot(labeled_project)
    job = _run(labeled_project, "labels.json", json.dumps(payload()).encode())
    assert job.status == Job.Status.FAILED
    assert sorted(e["code"] for e in job.errors) == sorted(codes)
    assert all(e["message"] for e in job.errors)
    assert _snapshot(labeled_project) == before


def test_zip_with_a_broken_image_creates_no_assets_and_leaves_no_files(labeled_project):
    before = _snapshot(labeled_project)
    doc = _coco([GOOD], images=[
        {"id": 1, "file_name": "a.png", "width": 30, "height": 20},
        {"id": 2, "file_name": "fresh.png", "width": 8, "height": 6},
        {"id": 3, "file_name": "broken.png", "width": 8, "height": 6}])
    doc["annotations"].append({**GOOD, "image_id": 2, "segmentation": [[0, 0, 4, 0, 4, 4]]})
    data = zip_bytes({"ann.json": json.dumps(doc).encode(), "fresh.png": png(rgb_image(8, 6, 5)),
                      "broken.png": b"\x89PNG\r\n\x1a\n not really"})
    job = _run(labeled_project, "set.zip", data)
    assert job.status == Job.Status.FAILED
    assert [e["where"] for e in job.errors] == ["ann.json: images[2]"]
    assert _snapshot(labeled_project) == before
    assert not default_storage.exists(job.params["path"])  # the upload itself is cleaned up


def test_good_import_matches_by_name_creates_classes_and_reports(labeled_project):
    asset = Asset.objects.get(project=labeled_project, name="a.png")
    job = _run(labeled_project, "labels.json", json.dumps(_coco([GOOD, {**GOOD, "id": 2, "bbox": [0, 0, 1, 1],
                                                                       "segmentation": []}])).encode())
    assert job.status == Job.Status.SUCCEEDED, job.errors
    assert job.result["assets_matched"] == 1 and job.result["instances"] == 1
    assert job.result["classes_created"] == ["new-class"]
    assert job.result["skipped"] == [{"where": "labels.json: annotations[1]",
                                      "reason": "no segmentation (box only)"}]
    revision = MaskSet.objects.get(asset=asset).revision
    assert revision.number == 2 and revision.source == "import"  # revision 1 can be restored


def test_api_structural_errors_are_400_straight_away(client_for, labeled_project):
    client = client_for(factories.owner_of(labeled_project))
    url = f"/api/v1/projects/{labeled_project.id}/imports/"
    before = Job.objects.count()
    for name, data, fmt, code in [
        ("x.json", b"{broken", "coco", "bad_json"),
        ("x.json", json.dumps({"images": []}).encode(), "coco", "bad_structure"),
        ("x.json", json.dumps({"shapes": []}).encode(), "labelme", "bad_structure"),
        ("x.zip", zip_bytes({"readme.txt": b"hi"}), "coco", "no_label_file"),
    ]:
        response = client.post(url, {"file": SimpleUploadedFile(name, data), "format": fmt},
                               format="multipart")
        assert response.status_code == 400, response.json()
        assert response.json()["error"]["details"]["problems"][0]["code"] == code
    response = client.post(url, {"file": SimpleUploadedFile("x.json", b"{}"), "format": "voc"},
                           format="multipart")
    assert response.status_code == 400
    assert Job.objects.count() == before
    viewer = client_for(factories.user_create())
    assert viewer.post(url, {}, format="multipart").status_code == 404


def test_streamed_coco_export_opens_in_pycocotools(client_for, labeled_project, tmp_path):
    project = labeled_project
    extra = factories.asset_create(project, width=9, height=7, seed=3, split="val")
    cls = LabelClass.objects.get(project=project, name="road")
    ring = np.ones((7, 9), bool)
    ring[2:5, 3:6] = False
    services.mask_set_replace_from_arrays(asset=extra, user=None, instances=[(cls, ring)])
    factories.asset_create(project, width=5, height=5, seed=4)  # unlabeled: left out
    client = client_for(factories.owner_of(project))
    response = client.get(f"/api/v1/projects/{project.id}/export/?format=coco")
    assert response.status_code == 200 and response.streaming
    files = unzip(b"".join(response.streaming_content))
    assert set(files) == {"annotations/instances_train.json", "annotations/instances_val.json",
                          "images/train/a.png", f"images/val/{extra.name}"}
    path = tmp_path / "val.json"
    path.write_bytes(files["annotations/instances_val.json"])
    coco = COCO(str(path))
    [ann] = coco.loadAnns(coco.getAnnIds())
    assert np.array_equal(coco.annToMask(ann).astype(bool), ring)
    assert coco.loadCats(ann["category_id"])[0]["name"] == "road" and ann["area"] == ring.sum()

    png_zip = unzip(b"".join(client.get(f"/api/v1/projects/{project.id}/export/?format=png"
                                        "&images=false").streaming_content))
    assert set(png_zip) == {"classes.json", "masks/train/a.png", f"masks/val/{extra.name}"}
    from PIL import Image

    mask = Image.open(io.BytesIO(png_zip[f"masks/val/{extra.name}"]))
    assert mask.mode == "P" and np.array_equal(np.asarray(mask) == cls.index + 1, ring)
    assert json.loads(png_zip["classes.json"])[1] == {"index": cls.index + 1, "name": "road",
                                                       "color": cls.color}
    bad = client.get(f"/api/v1/projects/{project.id}/export/?format=voc")
    assert bad.status_code == 400
