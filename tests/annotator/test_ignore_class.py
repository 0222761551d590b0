"""The project's ignore (void) class: one per project, set through the class API;
LabelMe ``__ignore__``, PNG 255 and (when asked) COCO crowd regions import into it;
class maps give its pixels 255, which training data and the metrics leave out; exports
write it back in each format's convention."""
from __future__ import annotations

import json

import numpy as np
import pytest

from annotator import services
from annotator.formats import rle as rlelib
from annotator.formats.dataset import IGNORE_CLASS
from annotator.formats.png import decode_index_png
from annotator.selectors import class_labels, mask_semantic_map, trainable_classes
from projects.models import Asset, LabelClass, Role
from tests import factories
from tests.annotator.helpers import png, rgb_image, unzip, zip_bytes
from training.modeling.metrics import confusion_matrix

pytestmark = pytest.mark.django_db


def test_class_api_sets_one_ignore_class(client_for):
    project = factories.project_create(ann=Role.ANNOTATOR)
    owner = client_for(factories.owner_of(project))
    url = f"/api/v1/projects/{project.id}/classes/"
    road = owner.post(url, {"name": "road"}, format="json").json()
    assert road["is_ignore"] is False
    void = owner.post(url, {"name": "void", "is_ignore": True}, format="json")
    assert void.status_code == 201 and void.json()["is_ignore"] is True
    second = owner.post(url, {"name": "border", "is_ignore": True}, format="json")
    assert second.status_code == 400 and second.json()["error"]["code"] == "duplicate"
    assert not LabelClass.objects.filter(project=project, name="border").exists()
    flip = owner.patch(f"{url}{road['id']}/", {"is_ignore": True}, format="json")
    assert flip.status_code == 400 and "is_ignore" in flip.json()["error"]["details"]
    assert owner.patch(f"{url}{void.json()['id']}/", {"is_ignore": False}, format="json").json()["is_ignore"] is False
    assert owner.patch(f"{url}{road['id']}/", {"is_ignore": True}, format="json").json()["is_ignore"] is True
    annotator = client_for(project.memberships.get(role=Role.ANNOTATOR).user)
    assert annotator.patch(f"{url}{road['id']}/", {"is_ignore": False}, format="json").status_code == 403


def _labelme_zip() -> bytes:
    doc = {"version": "5.5.0", "flags": {}, "imagePath": "a.png", "imageData": None,
           "imageHeight": 20, "imageWidth": 30, "shapes": [
               {"label": "car", "points": [[2, 2], [12, 2], [12, 10], [2, 10]], "group_id": None,
                "shape_type": "polygon", "flags": {}},
               {"label": "__ignore__", "points": [[0, 15], [29, 19]], "group_id": None,
                "shape_type": "rectangle", "flags": {}}]}
    return zip_bytes({"a.json": json.dumps(doc).encode(), "a.png": png(rgb_image(30, 20, 3))})


def _import(project, name, data, format, **options):
    job = services.import_start(project=project, user=factories.owner_of(project), name=name,
                                data=data, format=format, **options)
    services.import_run(job=job)
    job.refresh_from_db()
    assert job.status == "succeeded", job.errors
    return job


def test_labelme_ignore_imports_into_the_ignore_class_and_is_255_for_training():
    project = factories.project_create()
    job = _import(project, "l.zip", _labelme_zip(), "labelme")
    ignore = LabelClass.objects.get(project=project, is_ignore=True)
    assert ignore.name == IGNORE_CLASS and job.result["classes_created"] == ["car", IGNORE_CLASS]
    assert [c.name for c in trainable_classes(project=project)] == ["car"]
    labels = class_labels(project=project)
    car = LabelClass.objects.get(project=project, name="car")
    assert labels == {car.id: 1, ignore.id: 255}
    class_map = mask_semantic_map(asset=Asset.objects.get(project=project), labels=labels)
    assert set(np.unique(class_map)) == {0, 1, 255}
    assert (class_map[15:20, :] == 255).all()  # the rectangle covers rows 15..19
    # evaluation leaves the ignore pixels out: a prediction of "background" there costs nothing
    prediction = np.where(class_map == 255, 0, class_map)
    matrix = confusion_matrix(prediction, class_map, num_classes=2)
    assert matrix.sum() == (class_map != 255).sum() and matrix[0, 1] == matrix[1, 0] == 0


def test_a_second_import_reuses_the_ignore_class_and_flags_an_old_ignore_named_class():
    project = factories.project_create()
    old = factories.label_class_create(project, name="__ignore__")  # an import before ignore classes
    _import(project, "l.zip", _labelme_zip(), "labelme")
    old.refresh_from_db()
    assert old.is_ignore and LabelClass.objects.filter(project=project).count() == 2
    _import(project, "l.zip", _labelme_zip(), "labelme")
    assert LabelClass.objects.filter(project=project, is_ignore=True).count() == 1


def test_exports_write_the_ignore_class_back_in_each_convention():
    project = factories.project_create()
    _import(project, "l.zip", _labelme_zip(), "labelme")
    labelme = unzip(b"".join(services.export_stream(project=project, format="labelme")))
    doc = json.loads(labelme["train/a.json"])
    assert sorted(s["label"] for s in doc["shapes"]) == ["__ignore__", "car"]
    png_zip = unzip(b"".join(services.export_stream(project=project, format="png")))
    class_map = decode_index_png(png_zip["masks/train/a.png"])
    assert (class_map[15:20, :] == 255).all() and set(np.unique(class_map)) == {0, 1, 255}
    assert {c["index"] for c in json.loads(png_zip["classes.json"])} == {0, 1, 255}
    coco_zip = unzip(b"".join(services.export_stream(project=project, format="coco")))
    coco = json.loads(coco_zip["annotations/instances_train.json"])
    crowd = {a["category_id"]: a["iscrowd"] for a in coco["annotations"]}
    names = {c["id"]: c["name"] for c in coco["categories"]}
    assert {names[k]: v for k, v in crowd.items()} == {"car": 0, "__ignore__": 1}

    # each export read back into a fresh project gives the same class map, 255 included
    reference = mask_semantic_map(asset=Asset.objects.get(project=project))
    for format, files, options in (("labelme", labelme, {}), ("png", png_zip, {}),
                                   ("coco", coco_zip, {"crowd_as_ignore": True})):
        other = factories.project_create()
        _import(other, f"{format}.zip", zip_bytes(files), format, **options)
        assert LabelClass.objects.filter(project=other, is_ignore=True).count() == 1, format
        got = mask_semantic_map(asset=Asset.objects.get(project=other))
        assert np.array_equal(got, reference), format


def test_coco_crowd_is_an_ordinary_object_unless_asked():
    project = factories.project_create()
    asset = factories.asset_create(project, width=30, height=20, seed=1)
    Asset.objects.filter(pk=asset.pk).update(name="a.png")
    mask = np.zeros((20, 30), bool)
    mask[3:9, 4:20] = True
    rle = rlelib.encode(mask)
    doc = {"images": [{"id": 1, "file_name": "a.png", "width": 30, "height": 20}],
           "categories": [{"id": 7, "name": "person"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "iscrowd": 1,
                            "segmentation": {"size": rle["size"], "counts": rle["counts"]}}]}
    data = json.dumps(doc).encode()
    _import(project, "c.json", data, "coco")
    assert not LabelClass.objects.filter(project=project, is_ignore=True).exists()
    _import(project, "c.json", data, "coco", crowd_as_ignore=True)
    class_map = mask_semantic_map(asset=Asset.objects.get(pk=asset.pk))
    assert (class_map[mask] == 255).all() and (class_map[~mask] == 0).all()


def test_crowd_as_ignore_is_refused_for_formats_without_crowds(client_for):
    project = factories.project_create()
    owner = client_for(factories.owner_of(project))
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = owner.post(f"/api/v1/projects/{project.id}/imports/",
                          {"file": SimpleUploadedFile("l.zip", _labelme_zip()), "format": "labelme",
                           "crowd_as_ignore": "true"}, format="multipart")
    assert response.status_code == 400 and "crowd_as_ignore" in response.json()["error"]["details"]
