"""Import and export as jobs run by a real Celery worker process (queue `default`),
with progress and the report read back through the jobs API."""
import json

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotator import services
from annotator.formats import rle as rlelib
from projects.models import Asset, LabelClass
from tests import factories
from tests.annotator.helpers import b64png, png, rgb_image, unzip, zip_bytes
from tests.conftest import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def _job(client, job_id):
    return client.get(f"/api/v1/jobs/{job_id}/").json()


def test_labelme_zip_import_then_export_job(celery_worker_process, client_for):
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    crop = np.ones((3, 4), np.uint8)
    doc = {"version": "5.5.0", "flags": {}, "imagePath": "cat.png", "imageData": None,
           "imageHeight": 10, "imageWidth": 12, "shapes": [
               {"label": "cat", "points": [[1, 1], [4, 3]], "group_id": None, "description": "",
                "shape_type": "mask", "flags": {}, "mask": b64png(crop)},
               {"label": "cat", "points": [[8, 8]], "group_id": None, "description": "",
                "shape_type": "point", "flags": {}, "mask": None}]}
    data = zip_bytes({"val/cat.json": json.dumps(doc).encode(), "val/cat.png": png(rgb_image(12, 10))})
    response = client.post(f"/api/v1/projects/{project.id}/imports/",
                           {"file": SimpleUploadedFile("set.zip", data), "format": "labelme"},
                           format="multipart")
    assert response.status_code == 202, response.json()
    job_id = response.json()["id"]
    job = wait_until(lambda: (j := _job(client, job_id))["status"] in ("succeeded", "failed") and j,
                     timeout=60)
    assert job["status"] == "succeeded", job["errors"]
    assert job["progress"] == 1.0 and job["result"]["assets_created"] == 1
    assert job["result"]["skipped"][0]["reason"] == "shape_type 'point' has no area"
    asset = Asset.objects.get(project=project)
    assert (asset.name, asset.split, asset.status) == ("cat.png", "val", "labeled")
    masks = client.get(f"/api/v1/assets/{asset.id}/masks/").json()["masks"]
    expected = np.zeros((10, 12), bool)
    expected[1:4, 1:5] = True
    assert [m["class_id"] for m in masks] == [LabelClass.objects.get(project=project, name="cat").id]
    assert np.array_equal(rlelib.decode(masks[0]["rle"]), expected)

    response = client.get(f"/api/v1/projects/{project.id}/export/?format=coco&delivery=job")
    assert response.status_code == 202
    export_id = response.json()["id"]
    job = wait_until(lambda: (j := _job(client, export_id))["status"] in ("succeeded", "failed") and j,
                     timeout=60)
    assert job["status"] == "succeeded", job["errors"]
    download = client.get(job["download_url"])
    files = unzip(b"".join(download.streaming_content))
    coco = json.loads(files["annotations/instances_val.json"])
    assert coco["annotations"][0]["segmentation"]["counts"] == masks[0]["rle"]["counts"]
    assert files["images/val/cat.png"] == png(rgb_image(12, 10))
    assert job["kind"] == services.EXPORT_KIND
