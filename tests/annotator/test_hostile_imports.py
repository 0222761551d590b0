"""Hostile label files through the real path (issue 15.1, 15.2): a real Celery worker
reads the tiny files that declare huge images, a worker that crashes on a file ends its
job after two crashes with a readable reason, and a stuck job can be cancelled."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from projects.models import Job
from tests import factories
from tests.conftest import resume_consuming, stop_consuming, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

# A LabelMe file of ~300 bytes declaring a 100000x100000 image: the reader used to draw a
# canvas of that size first (17 GB, the worker killed by the kernel, again and again).
LABELME_HUGE = json.dumps({
    "version": "5.5.0", "flags": {}, "imagePath": "x.png", "imageData": None,
    "imageHeight": 100000, "imageWidth": 100000, "shapes": [
        {"label": "x", "points": [[0, 0], [99999, 0], [99999, 99999]], "group_id": None,
         "description": "", "shape_type": "polygon", "flags": {}, "mask": None}]}).encode()
# A COCO file of ~250 bytes declaring a 1e9 x 1e9 image with a polygon: pycocotools'
# frPyObjects segfaults on it (the worker died 15 times in 40 s).
COCO_HUGE = json.dumps({
    "images": [{"id": 1, "file_name": "x.png", "width": 10**9, "height": 10**9}],
    "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                     "segmentation": [[0, 0, 10**9, 0, 10**9, 10**9]]}],
    "categories": [{"id": 1, "name": "x"}]}).encode()


def _post(client, project, name: str, data: bytes, **fields):
    return client.post(f"/api/v1/projects/{project.id}/imports/",
                       {"file": SimpleUploadedFile(name, data), **fields}, format="multipart")


def _finished(client, job_id: int, timeout: float = 60) -> dict:
    return wait_until(lambda: (j := client.get(f"/api/v1/jobs/{job_id}/").json())["status"]
                      in ("succeeded", "failed") and j, timeout=timeout)


def test_tiny_files_declaring_huge_images_are_refused_by_the_worker(celery_worker_process, client_for):
    assert len(LABELME_HUGE) < 465 and len(COCO_HUGE) < 257
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    for name, data, fmt in (("huge.json", LABELME_HUGE, "labelme"), ("huge-coco.json", COCO_HUGE, "coco")):
        response = _post(client, project, name, data)  # format detected
        assert response.status_code == 202, response.json()
        assert response.json()["params"]["format"] == fmt
        job = _finished(client, response.json()["id"])
        assert job["status"] == "failed"
        [error] = [e for e in job["errors"] if e["code"] == "image_too_large"]
        assert "100000x100000" in error["message"] or "1000000000x1000000000" in error["message"]
        assert error["where"].startswith(name)
        assert job["params"]["attempts"] == 1  # the worker never died on it
        assert job["message"].endswith("nothing was imported.")


def test_a_file_that_kills_its_worker_fails_the_job_after_two_crashes(start_celery_worker, client_for):
    """A worker whose limits let the 1e9 x 1e9 COCO file through (as every worker did
    before) segfaults in pycocotools; acks_late + reject_on_worker_lost hands the task
    out again; after two crashes the job fails with a reason instead of looping."""
    paused = stop_consuming("default")
    try:
        worker = start_celery_worker(queues=("default",), name="crashy@tessera", env={
            "TESSERA_MAX_IMAGE_SIDE": str(2 * 10**9), "TESSERA_MAX_IMAGE_PIXELS": str(10**19)})
        project = factories.project_create()
        client = client_for(factories.owner_of(project))
        response = _post(client, project, "huge-coco.json", COCO_HUGE, format="coco")
        assert response.status_code == 202
        job = _finished(client, response.json()["id"], timeout=120)
        assert job["status"] == "failed"
        assert job["errors"] == [{"code": "worker_crashed", "where": "",
                                  "message": "The import crashed the worker twice; nothing was imported."}]
        assert job["params"]["attempts"] == 2
        assert worker.poll() is None  # the worker process itself lives on
        log = Path(_log_of(worker)).read_text()
        assert log.count("SIGSEGV") >= 2, log[-3000:]
    finally:
        resume_consuming("default", paused)


def _log_of(worker) -> str:
    from django.conf import settings

    return str(settings.VAR_DIR / f"worker-{worker.worker_name.split('@')[0]}.log")


def test_a_stuck_job_is_visible_and_can_be_cancelled(celery_worker_process, client_for):
    project = factories.project_create(viewer_c="viewer")
    owner = factories.owner_of(project)
    client = client_for(owner)
    doc = {"version": "5.5.0", "flags": {}, "imagePath": "x.png", "imageData": None,
           "imageHeight": 10, "imageWidth": 10, "shapes": []}
    paused = stop_consuming("default")
    try:
        response = _post(client, project, "a.json", json.dumps(doc).encode())
        job_id = response.json()["id"]
        job = client.get(f"/api/v1/jobs/{job_id}/").json()
        assert job["status"] == "queued"
        # visible in the project's list of active imports
        listed = client.get(f"/api/v1/projects/{project.id}/jobs/?kind=import&active=true").json()
        assert [j["id"] for j in listed["results"]] == [job_id]
        assert client.get(f"/api/v1/projects/{project.id}/jobs/?active=false").json()["results"] == []
        viewer = client_for(get_user_model().objects.get(username="viewer_c"))
        assert viewer.post(f"/api/v1/jobs/{job_id}/cancel/").status_code == 403
        outsider = client_for(factories.user_create())
        assert outsider.post(f"/api/v1/jobs/{job_id}/cancel/").status_code == 404
        cancelled = client.post(f"/api/v1/jobs/{job_id}/cancel/")
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "failed"
        assert cancelled.json()["errors"][0]["code"] == "cancelled"
        again = client.post(f"/api/v1/jobs/{job_id}/cancel/")
        assert again.status_code == 409 and again.json()["error"]["code"] == "job_finished"
    finally:
        resume_consuming("default", paused)
    # the worker gets the queued task now, and leaves the cancelled job alone
    wait_until(lambda: not _queued_tasks(), timeout=30)
    job = Job.objects.get(pk=job_id)
    assert job.status == "failed" and job.errors[0]["code"] == "cancelled"
    listed = client.get(f"/api/v1/projects/{project.id}/jobs/?active=false").json()["results"]
    assert [j["id"] for j in listed] == [job_id]
    assert client_for(factories.user_create()).get(f"/api/v1/projects/{project.id}/jobs/").status_code == 404
    assert "attempts" not in job.params


def _queued_tasks() -> int:
    from config.celery_app import app

    with app.connection_for_write() as conn:
        return conn.default_channel.client.llen("default")
