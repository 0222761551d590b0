"""Imports from S3 by bucket and prefix against moto's S3 server (the S3 protocol over
HTTP): the API checks the bucket and the prefix at once; the job, run by a real Celery
worker, reads the label file and then the images one at a time."""
from __future__ import annotations

import json

import boto3
import numpy as np
import pytest
from moto.server import ThreadedMotoServer

from annotator import services
from annotator.formats import READERS
from annotator.selectors import mask_semantic_map
from annotator.sources import DeferredImage, S3Files, s3_client
from config.embedded import free_port
from projects.models import Asset, Job, Role
from tests import factories
from tests.annotator.helpers import png, rgb_image
from tests.conftest import resume_consuming, stop_consuming, wait_until

BUCKET = "datasets"


@pytest.fixture(scope="module")
def s3():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    client.create_bucket(Bucket=BUCKET)
    client.create_bucket(Bucket="private")
    yield endpoint, client
    server.stop()


def _settings(endpoint: str) -> dict:
    return {"TESSERA_IMPORT_S3_ENDPOINT_URL": endpoint, "TESSERA_IMPORT_S3_REGION": "us-east-1",
            "TESSERA_IMPORT_S3_ACCESS_KEY_ID": "test", "TESSERA_IMPORT_S3_SECRET_ACCESS_KEY": "test",
            "TESSERA_IMPORT_S3_BUCKETS": [BUCKET]}


def _put_coco(client, prefix: str, count: int) -> list[np.ndarray]:
    """A COCO dataset under prefix: images/train/im<n>.png and annotations/instances_train.json
    (one box-shaped polygon per image)."""
    doc = {"images": [], "annotations": [], "categories": [{"id": 3, "name": "cell"}]}
    masks = []
    for n in range(count):
        client.put_object(Bucket=BUCKET, Key=f"{prefix}images/train/im{n}.png", Body=png(rgb_image(16, 12, seed=n)))
        doc["images"].append({"id": n + 1, "file_name": f"im{n}.png", "width": 16, "height": 12})
        x = n % 8
        doc["annotations"].append({"id": n + 1, "image_id": n + 1, "category_id": 3, "iscrowd": 0,
                                   "segmentation": [[x, 2, x + 6, 2, x + 6, 9, x, 9]]})
        mask = np.zeros((12, 16), bool)
        mask[2:9, x:x + 6] = True
        masks.append(mask)
    client.put_object(Bucket=BUCKET, Key=f"{prefix}annotations/instances_train.json",
                      Body=json.dumps(doc).encode())
    return masks


def test_s3_files_hand_images_out_unread(s3):
    endpoint, client = s3
    _put_coco(client, "lazy/", 3)
    files = S3Files.list(s3_client(endpoint_url=endpoint, region="us-east-1", access_key="test",
                                   secret_key="test"), BUCKET, "lazy/", max_objects=100, max_bytes=10**6)
    assert sorted(files) == ["annotations/instances_train.json", "images/train/im0.png",
                             "images/train/im1.png", "images/train/im2.png"]
    parsed = READERS["coco"](files)
    assert not parsed.problems and files.downloads == 1  # the label file only
    data = parsed.images[0].data
    assert isinstance(data, DeferredImage) and data.load() == png(rgb_image(16, 12, seed=0))
    with pytest.raises(Exception, match="more than|More than"):
        S3Files.list(files.client, BUCKET, "lazy/", max_objects=2, max_bytes=10**6)


@pytest.mark.django_db
def test_s3_import_is_checked_before_a_job_starts(s3, client_for, settings):
    endpoint, client = s3
    for key, value in _settings(endpoint).items():
        setattr(settings, key, value)
    _put_coco(client, "checked/", 1)
    project = factories.project_create(viewer=Role.VIEWER)
    owner = client_for(factories.owner_of(project))
    url = f"/api/v1/projects/{project.id}/imports/s3/"
    body = {"bucket": BUCKET, "prefix": "checked/", "format": "coco"}
    private = owner.post(url, {**body, "bucket": "private"}, format="json")
    assert private.status_code == 400 and private.json()["error"]["code"] == "bucket_not_allowed"
    empty = owner.post(url, {**body, "prefix": "nothing-here/"}, format="json")
    assert empty.status_code == 400 and "prefix" in empty.json()["error"]["details"]
    crowd = owner.post(url, {**body, "format": "labelme", "crowd_as_ignore": True}, format="json")
    assert crowd.status_code == 400
    viewer = client_for(project.memberships.get(role=Role.VIEWER).user)
    assert viewer.post(url, body, format="json").status_code == 403
    stranger = client_for(factories.user_create())
    assert stranger.post(url, body, format="json").status_code == 404
    assert not Job.objects.filter(project=project).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_s3_import_job_runs_in_a_worker(s3, client_for, start_celery_worker, settings):
    endpoint, client = s3
    for key, value in _settings(endpoint).items():
        setattr(settings, key, value)
    masks = _put_coco(client, "big/set one/", 24)
    others = stop_consuming("default")
    env = {k: (",".join(v) if isinstance(v, list) else v) for k, v in _settings(endpoint).items()}
    worker = start_celery_worker(queues=("default",), name="s3-import@tessera", env=env)
    try:
        project = factories.project_create()
        api = client_for(factories.owner_of(project))
        response = api.post(f"/api/v1/projects/{project.id}/imports/s3/",
                            {"bucket": BUCKET, "prefix": "big/set one/", "format": "coco"}, format="json")
        assert response.status_code == 202, response.json()
        job_id = response.json()["id"]
        job = wait_until(lambda: (j := api.get(f"/api/v1/jobs/{job_id}/").json())["status"]
                         in ("succeeded", "failed") and j, timeout=90)
    finally:
        worker.terminate()
        worker.wait(30)
        resume_consuming("default", others)
    assert job["status"] == "succeeded", job["errors"]
    assert job["progress"] == 1.0 and job["result"]["assets_created"] == 24
    assert job["result"]["instances"] == 24
    for n, mask in enumerate(masks):
        asset = Asset.objects.get(project=project, name=f"im{n}.png")
        assert asset.split == "train"
        assert np.array_equal(mask_semantic_map(asset=asset) == 1, mask)


@pytest.mark.django_db
def test_s3_import_all_or_nothing_when_an_image_is_missing(s3, settings):
    endpoint, client = s3
    for key, value in _settings(endpoint).items():
        setattr(settings, key, value)
    _put_coco(client, "broken/", 3)
    client.delete_object(Bucket=BUCKET, Key="broken/images/train/im1.png")
    project = factories.project_create()
    job = services.import_start_s3(project=project, user=factories.owner_of(project), bucket=BUCKET,
                                   prefix="broken/", format="coco")
    services.import_run(job=job)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert [e["code"] for e in job.errors] == ["unknown_image"]
    assert not Asset.objects.filter(project=project).exists()
