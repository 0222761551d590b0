"""Splits (one by one, in bulk, auto-split by ratios), the summary the grid and the
training page read, the run refusal on an empty or tiny val split, and bulk deletion
that leaves nothing behind in storage (local disk and S3)."""
from __future__ import annotations

import uuid

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from annotator.models import MaskRevision, MaskSet
from annotator.services import mask_set_replace_from_arrays
from projects import services
from projects.models import Asset, Role
from tests import factories

pytestmark = pytest.mark.django_db


def _label(asset: Asset, *classes) -> None:
    """Give the asset one mask per class (a different rectangle each)."""
    instances = []
    for n, label_class in enumerate(classes):
        mask = np.zeros((asset.height, asset.width), bool)
        mask[n:n + 3, n:n + 4] = True
        instances.append((label_class, mask))
    mask_set_replace_from_arrays(asset=asset, user=None, instances=instances)


def _bulk(client, project, **body):
    return client.post(f"/api/v1/projects/{project.id}/assets/bulk/", body, format="json")


def test_split_set_by_hand_is_locked_and_bulk_moves_by_ids_or_filter(client_for):
    project = factories.project_create(ann=Role.ANNOTATOR, view=Role.VIEWER)
    annotator = client_for(project.memberships.get(role=Role.ANNOTATOR).user)
    viewer = client_for(project.memberships.get(role=Role.VIEWER).user)
    a, b, c = (factories.asset_create(project) for _ in range(3))

    one = annotator.patch(f"/api/v1/assets/{a.id}/", {"split": "val"}, format="json").json()
    assert (one["split"], one["split_locked"]) == ("val", True)

    moved = _bulk(annotator, project, action="set_split", ids=[b.id, c.id], split="test")
    assert moved.status_code == 200 and moved.json() == {"action": "set_split", "count": 2}
    by_filter = _bulk(annotator, project, action="set_split", filter={"split": "test"}, split="val")
    assert by_filter.json()["count"] == 2
    assert set(Asset.objects.values_list("split", "split_locked")) == {("val", True)}

    summary = viewer.get(f"/api/v1/projects/{project.id}/assets/summary/").json()
    assert summary["splits"]["val"] == {"total": 3, "labeled": 0}
    assert summary["splits"]["train"]["total"] == 0 and summary["locked"] == 3
    assert summary["statuses"]["unlabeled"] == 3 and summary["total"] == 3

    status = _bulk(annotator, project, action="set_status", ids=[a.id], status="in_progress")
    assert status.json()["count"] == 1 and Asset.objects.get(pk=a.id).status == "in_progress"
    # Reviewed only when labelled; rejected only one by one, with a comment.
    unlabeled = _bulk(annotator, project, action="set_status", ids=[a.id, b.id], status="reviewed")
    assert unlabeled.status_code == 409 and unlabeled.json()["error"]["code"] == "not_labeled"
    _label(b, factories.label_class_create(project))
    reviewed = _bulk(annotator, project, action="set_status", ids=[b.id], status="reviewed")
    assert reviewed.json()["count"] == 1
    assert Asset.objects.get(pk=b.id).reviewed_by == project.memberships.get(role=Role.ANNOTATOR).user
    rejected = _bulk(annotator, project, action="set_status", ids=[b.id], status="rejected")
    assert rejected.status_code == 400 and rejected.json()["error"]["code"] == "comment_required"

    # Refusals: a viewer writes nothing, an annotator deletes nothing, bad bodies are 400s.
    assert _bulk(viewer, project, action="set_split", ids=[a.id], split="train").status_code == 403
    assert _bulk(annotator, project, action="delete", ids=[a.id]).status_code == 403
    assert _bulk(annotator, project, action="set_split", ids=[a.id]).status_code == 400
    both = _bulk(annotator, project, action="set_split", ids=[a.id], filter={}, split="train")
    assert both.status_code == 400 and both.json()["error"]["details"]["ids"]
    assert _bulk(annotator, project, action="set_split", ids=[a.id], split="holdout").status_code == 400
    assert Asset.objects.filter(split="val").count() == 3


def test_bulk_refuses_assets_of_another_project(client_for):
    project = factories.project_create()
    other = factories.project_create(owner=factories.owner_of(project))  # same owner, both projects
    mine, theirs = factories.asset_create(project), factories.asset_create(other)
    client = client_for(factories.owner_of(project))

    response = _bulk(client, project, action="set_split", ids=[mine.id, theirs.id], split="val")
    assert response.status_code == 404 and response.json()["error"]["details"]["ids"] == [theirs.id]
    response = _bulk(client, project, action="delete", ids=[theirs.id])
    assert response.status_code == 404
    assert set(Asset.objects.values_list("split", flat=True)) == {"train"}  # nothing changed
    assert Asset.objects.count() == 2

    stranger = client_for(factories.user_create())
    assert _bulk(stranger, project, action="delete", ids=[mine.id]).status_code == 404


def test_auto_split_is_stratified_seeded_and_keeps_hand_placed_assets(client_for):
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    car, road = factories.label_class_create(project, "car"), factories.label_class_create(project, "road")
    assets = [factories.asset_create(project, width=12, height=10) for _ in range(40)]
    for asset in assets[:20]:
        _label(asset, car)
    for asset in assets[20:30]:
        _label(asset, car, road)
    pinned = assets[30]
    client.patch(f"/api/v1/assets/{pinned.id}/", {"split": "test"}, format="json")
    url = f"/api/v1/projects/{project.id}/splits/auto/"

    body = client.post(url, {"train": 80, "val": 10, "test": 10, "seed": 7}, format="json").json()
    assert body["kept_locked"] == 1 and body["assigned"] == {"train": 31, "val": 4, "test": 4}
    first = dict(Asset.objects.values_list("id", "split"))
    assert first[pinned.id] == "test"

    def split_counts(ids):
        return {s: sum(first[i] == s for i in ids) for s in ("train", "val", "test")}

    # Each class-presence group gets its share: 20 car-only -> 16/2/2, 10 car+road -> 8/1/1.
    assert split_counts([a.id for a in assets[:20]]) == {"train": 16, "val": 2, "test": 2}
    assert split_counts([a.id for a in assets[20:30]]) == {"train": 8, "val": 1, "test": 1}
    assert body["summary"]["validation"]["ok"] is True
    assert not Asset.objects.exclude(pk=pinned.id).filter(split_locked=True).exists()

    # The same seed deals the same way; another seed differently.
    client.post(url, {"train": 80, "val": 10, "test": 10, "seed": 7}, format="json")
    assert dict(Asset.objects.values_list("id", "split")) == first
    client.post(url, {"train": 80, "val": 10, "test": 10, "seed": 8}, format="json")
    assert dict(Asset.objects.values_list("id", "split")) != first
    assert Asset.objects.get(pk=pinned.id).split == "test"

    # Asked to, it re-deals the hand-placed one too (and it is auto-placed afterwards).
    everything = client.post(url, {"train": 1, "val": 0, "test": 0, "include_locked": True},
                             format="json").json()
    assert everything["kept_locked"] == 0 and everything["assigned"]["train"] == 40
    assert set(Asset.objects.values_list("split", "split_locked")) == {("train", False)}

    bad = client.post(url, {"train": 0, "val": 0, "test": 0}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_ratios"
    assert client.post(url, {"train": -1, "val": 1}, format="json").status_code == 400
    annotator = factories.user_create()
    project.memberships.create(user=annotator, role=Role.ANNOTATOR)
    assert client_for(annotator).post(url, {"train": 1, "val": 1}, format="json").status_code == 403


def test_a_run_is_refused_while_the_val_split_is_empty_or_tiny(client_for, settings,
                                                                django_capture_on_commit_callbacks):
    from training.models import TrainingRun

    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    label_class = factories.label_class_create(project)
    assets = [factories.asset_create(project, width=12, height=10) for _ in range(40)]
    for asset in assets:
        _label(asset, label_class)
    workflow = client.post(f"/api/v1/projects/{project.id}/workflows/", {"name": "wf", "config": {
        "family": "segformer", "variant": "tiny", "resolution": [64, 64], "steps": 10,
        "pretrained": "none"}}, format="json").json()["id"]

    refused = client.post("/api/v1/trainings/", {"workflow": workflow}, format="json")
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "no_training_data"
    assert "validation split is empty" in error["message"] and "Auto-split" in error["message"]
    assert error["details"]["splits"]["train"]["labeled"] == 40

    # One val image out of 40 labelled is under 5 %: still refused, and the summary says so.
    _bulk(client, project, action="set_split", ids=[assets[0].id], split="val")
    summary = client.get(f"/api/v1/projects/{project.id}/assets/summary/").json()["validation"]
    assert summary == {"ok": False, "labeled": 1, "minimum": 2, "message": summary["message"]}
    assert "holds only 1 labelled image" in summary["message"]
    assert client.post("/api/v1/trainings/", {"workflow": workflow}, format="json").status_code == 400
    assert not TrainingRun.objects.exists()

    client.post(f"/api/v1/projects/{project.id}/splits/auto/", {"train": 80, "val": 20}, format="json")
    with django_capture_on_commit_callbacks(execute=False):
        started = client.post("/api/v1/trainings/", {"workflow": workflow}, format="json")
    assert started.status_code == 201, started.json()


def _asset_with_everything(project, label_class, seed: int) -> tuple[Asset, set[str]]:
    """An asset with masks (two revisions), a thumbnail and a stored embedding; returns
    it and the storage names of its files."""
    from annotator.intellibrush.store import embedding_key

    asset = factories.asset_create(project, width=20, height=16, seed=seed)
    _label(asset, label_class)
    _label(asset, label_class)
    services.asset_make_thumbnail(asset=asset)
    services.asset_make_thumbnail(asset=asset)  # made again: the first file goes
    asset.refresh_from_db()
    embedding = default_storage.save(embedding_key(asset=asset, model_type="vit_b"),
                                     ContentFile(b"embedding"))
    return asset, {asset.file.name, asset.thumbnail.name, embedding}


def _bulk_delete_leaves_nothing(client_for, capture, list_names) -> None:
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    label_class = factories.label_class_create(project)
    doomed = [_asset_with_everything(project, label_class, seed) for seed in (1, 2, 3)]
    kept, kept_names = _asset_with_everything(project, label_class, 4)
    assert list_names() == set().union(kept_names, *(names for _, names in doomed))

    with capture(execute=True):
        response = _bulk(client, project, action="delete", ids=[a.id for a, _ in doomed])
    assert response.status_code == 200 and response.json()["count"] == 3
    assert list_names() == kept_names
    assert list(Asset.objects.values_list("id", flat=True)) == [kept.id]
    assert set(MaskRevision.objects.values_list("asset_id", flat=True)) == {kept.id}
    assert set(MaskSet.objects.values_list("asset_id", flat=True)) == {kept.id}

    with capture(execute=True):  # select all matching a filter
        assert _bulk(client, project, action="delete", filter={}).json()["count"] == 1
    assert list_names() == set() and not MaskRevision.objects.exists()


def test_bulk_delete_leaves_nothing_on_local_disk(client_for, settings, tmp_path,
                                                  django_capture_on_commit_callbacks):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path)}}}

    def list_names() -> set[str]:
        return {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}

    _bulk_delete_leaves_nothing(client_for, django_capture_on_commit_callbacks, list_names)


def test_bulk_delete_leaves_nothing_on_s3(client_for, settings, s3_endpoint,
                                          django_capture_on_commit_callbacks):
    endpoint, s3, bucket = s3_endpoint
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
            "bucket_name": bucket, "endpoint_url": endpoint, "region_name": "us-east-1",
            "access_key": "test", "secret_key": "test", "file_overwrite": False}}}

    def keys() -> set[str]:
        return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}

    before = keys()  # the bucket is shared with the other S3 tests of the session

    def list_names() -> set[str]:
        return keys() - before

    _bulk_delete_leaves_nothing(client_for, django_capture_on_commit_callbacks, list_names)


@pytest.fixture
def s3_endpoint():
    import boto3
    from moto.server import ThreadedMotoServer

    from config.embedded import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    # moto keeps its buckets per process: a bucket of our own, whatever ran before
    bucket = f"tessera-bulk-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    yield endpoint, s3, bucket
    server.stop()


def test_mask_overlay_png_follows_the_masks(client_for):
    from io import BytesIO

    from PIL import Image

    project = factories.project_create(view=Role.VIEWER)
    viewer = client_for(project.memberships.get(role=Role.VIEWER).user)
    label_class = factories.label_class_create(project, color="#ff0000")
    asset = factories.asset_create(project, width=600, height=300)
    assert viewer.get(f"/api/v1/assets/{asset.id}/").json()["overlay_url"] is None
    assert viewer.get(f"/api/v1/assets/{asset.id}/overlay/").status_code == 404
    _label(asset, label_class)

    listed = viewer.get(f"/api/v1/projects/{project.id}/assets/").json()["results"][0]
    assert listed["overlay_url"] == f"/api/v1/assets/{asset.id}/overlay/?rev=1"
    response = viewer.get(listed["overlay_url"])
    image = Image.open(BytesIO(response.content))
    assert response["Content-Type"] == "image/png" and image.size == (256, 128)
    pixels = np.asarray(image)
    assert tuple(pixels[0, 0]) == (255, 0, 0, 150)  # the mask's corner, in the class colour
    assert pixels[..., 3].sum() > 0 and tuple(pixels[-1, -1]) == (0, 0, 0, 0)
