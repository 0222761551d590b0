"""Review statuses, "next to label / review" that skip assets someone else has open,
the project list (counts per status, cover, search, sort), rename, and deletion as a
background job that leaves no rows and no stored files."""
from __future__ import annotations

import numpy as np
import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from annotator.services import mask_set_replace_from_arrays
from projects import services
from projects.models import Asset, Job, Project, Role
from projects.selectors import asset_open_key
from tests import factories
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_open_assets(db):
    """Asset ids repeat between tests (rolled back): forget who had which one open.
    (Only these keys: the broker and the channel layer share this Redis.)"""
    yield
    cache.delete_many([asset_open_key(pk) for pk in Asset.objects.values_list("id", flat=True)])


def _label(asset: Asset, label_class) -> None:
    mask = np.zeros((asset.height, asset.width), bool)
    mask[2:5, 3:7] = True
    mask_set_replace_from_arrays(asset=asset, user=None, instances=[(label_class, mask)])


def _team():
    project = factories.project_create(ann1=Role.ANNOTATOR, ann2=Role.ANNOTATOR, view=Role.VIEWER)
    users = {m.role + (m.user.username[-1] if m.role == Role.ANNOTATOR else ""): m.user
             for m in project.memberships.select_related("user")}
    return project, users


def test_review_accepts_or_rejects_with_a_comment(client_for):
    project, users = _team()
    reviewer, viewer = client_for(users["annotator1"]), client_for(users["viewer"])
    label_class = factories.label_class_create(project)
    asset = factories.asset_create(project)
    url = f"/api/v1/assets/{asset.id}/review/"

    early = reviewer.post(url, {"decision": "reviewed"}, format="json")
    assert early.status_code == 409 and early.json()["error"]["code"] == "not_labeled"
    _label(asset, label_class)

    no_comment = reviewer.post(url, {"decision": "rejected", "comment": "  "}, format="json")
    assert no_comment.status_code == 400 and no_comment.json()["error"]["code"] == "comment_required"
    rejected = reviewer.post(url, {"decision": "rejected", "comment": "The car's wheel is missing"},
                             format="json").json()
    assert (rejected["status"], rejected["review_comment"], rejected["reviewed_by"]) == (
        "rejected", "The car's wheel is missing", "ann1")
    # Saving the masks again sends it back to labelled, ready for another look.
    _label(asset, label_class)
    assert Asset.objects.get(pk=asset.id).status == "labeled"
    accepted = reviewer.post(url, {"decision": "reviewed"}, format="json").json()
    assert accepted["status"] == "reviewed" and accepted["reviewed_at"]

    assert viewer.post(url, {"decision": "reviewed"}, format="json").status_code == 403
    assert reviewer.post(url, {"decision": "labeled"}, format="json").status_code == 400
    stranger = client_for(factories.user_create())
    assert stranger.post(url, {"decision": "reviewed"}, format="json").status_code == 404


def test_next_to_label_and_review_skip_assets_open_elsewhere(client_for):
    project, users = _team()
    one, two = client_for(users["annotator1"]), client_for(users["annotator2"])
    label_class = factories.label_class_create(project)
    a, b, c = (factories.asset_create(project) for _ in range(3))
    _label(c, label_class)
    url = f"/api/v1/projects/{project.id}/assets/next/"

    first = one.post(url, {"purpose": "label"}, format="json").json()["asset"]
    assert first["id"] == a.id and first["status"] == "in_progress"
    # Someone else asking gets the next one; asking again myself gets mine again.
    assert two.post(url, {"purpose": "label"}, format="json").json()["asset"]["id"] == b.id
    assert one.post(url, {"purpose": "label"}, format="json").json()["asset"]["id"] == a.id
    assert one.post(url, {"purpose": "label", "after": a.id}, format="json").json()["asset"] is None
    # Review: only labelled assets.
    assert two.post(url, {"purpose": "review"}, format="json").json()["asset"]["id"] == c.id
    assert one.post(url, {"purpose": "review"}, format="json").json()["asset"] is None

    # The heartbeat endpoint is gone: the presence socket keeps assets open (see
    # tests/annotator/test_presence_websocket.py).
    assert one.post(f"/api/v1/assets/{b.id}/presence/").status_code == 404

    viewer = client_for(users["viewer"])
    assert viewer.post(url, {"purpose": "label"}, format="json").status_code == 403
    assert one.post(url, {"purpose": "sleep"}, format="json").status_code == 400


def test_project_list_counts_cover_search_and_sort(client_for):
    owner = factories.user_create()
    roads = factories.project_create(owner=owner, name="Roads")
    factories.project_create(owner=owner, name="Apples")
    factories.project_create(name="Someone else's roads")
    label_class = factories.label_class_create(roads)
    first, second = factories.asset_create(roads), factories.asset_create(roads)
    factories.asset_create(roads)
    _label(first, label_class)
    services.asset_make_thumbnail(asset=second)
    client = client_for(owner)

    listed = client.get("/api/v1/projects/").json()["results"]
    assert [p["name"] for p in listed] == ["Apples", "Roads"]  # newest first
    row = listed[1]
    assert row["asset_count"] == 3 and row["status_counts"] == {
        "unlabeled": 2, "in_progress": 0, "labeled": 1, "reviewed": 0, "rejected": 0}
    assert row["cover_url"] == f"/api/v1/assets/{second.id}/thumbnail/"
    assert listed[0]["cover_url"] is None
    assert [p["name"] for p in client.get("/api/v1/projects/?sort=name").json()["results"]] == [
        "Apples", "Roads"]
    assert [p["name"] for p in client.get("/api/v1/projects/?search=road").json()["results"]] == ["Roads"]
    assert client.get("/api/v1/projects/?sort=size").status_code == 400


def test_rename_is_owner_only(client_for):
    project, users = _team()
    owner = client_for(factories.owner_of(project))
    renamed = owner.patch(f"/api/v1/projects/{project.id}/", {"name": "Streets"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "Streets"
    assert client_for(users["annotator1"]).patch(
        f"/api/v1/projects/{project.id}/", {"name": "Mine"}, format="json").status_code == 403
    assert owner.patch(f"/api/v1/projects/{project.id}/", {"name": ""}, format="json").status_code == 400
    assert Project.objects.get(pk=project.id).name == "Streets"


def test_delete_needs_the_owner_and_the_typed_name(client_for):
    project, users = _team()
    url = f"/api/v1/projects/{project.id}/"
    owner = client_for(factories.owner_of(project))
    wrong = owner.delete(url, {"confirm": "Projekt"}, format="json")
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "confirmation_mismatch"
    assert owner.delete(url, {}, format="json").status_code == 400
    assert client_for(users["annotator1"]).delete(url, {"confirm": "Project"},
                                                  format="json").status_code == 403
    assert client_for(factories.user_create()).delete(url, {"confirm": "Project"},
                                                      format="json").status_code == 404
    assert Project.objects.get(pk=project.id).deleting_since is None


@pytest.mark.django_db(transaction=True)
def test_delete_runs_as_a_job_and_leaves_nothing(client_for, celery_worker_process):
    from annotator.intellibrush.store import embedding_key
    from annotator.models import MaskRevision

    project, users = _team()
    other = factories.project_create()
    kept = factories.asset_create(other)
    label_class = factories.label_class_create(project)
    names = set()
    for _ in range(5):
        asset = factories.asset_create(project)
        _label(asset, label_class)
        names |= {asset.file.name,
                  default_storage.save(embedding_key(asset=asset, model_type="vit_b"), ContentFile(b"e"))}
    # the worker makes the thumbnails
    thumbnails = wait_until(lambda: (lambda t: t if all(t) else None)(
        list(Asset.objects.filter(project=project).values_list("thumbnail", flat=True))))
    names |= set(thumbnails)
    # Beyond assets: a video, an export job's file, a run's checkpoint folder.
    from projects.models import Video

    video = Video(project=project, name="v.mp4", sha256="v")
    video.file.save("v.mp4", ContentFile(b"video"), save=True)
    export = services.job_create(project=project, user=None, kind="export")
    export.file.save("export.zip", ContentFile(b"zip"), save=True)
    checkpoint = default_storage.save(f"checkpoints/{project.id}/1-abc/step-10/state.json",
                                      ContentFile(b"{}"))
    names |= {video.file.name, export.file.name, checkpoint}
    assert all(default_storage.exists(n) for n in names)
    owner = client_for(factories.owner_of(project))

    response = owner.delete(f"/api/v1/projects/{project.id}/", {"confirm": "Project"}, format="json")
    assert response.status_code == 202
    job = response.json()
    assert job["kind"] == "project_delete"
    # Gone for everyone at once, while the job works.
    assert owner.get(f"/api/v1/projects/{project.id}/").status_code == 404
    assert client_for(users["viewer"]).get(f"/api/v1/projects/{project.id}/").status_code == 404
    assert project.id not in [p["id"] for p in owner.get("/api/v1/projects/").json()["results"]]

    done = wait_until(lambda: (lambda j: j if j["status"] in ("succeeded", "failed") else None)(
        owner.get(f"/api/v1/jobs/{job['id']}/").json()), timeout=60)
    assert done["status"] == "succeeded" and done["progress"] == 1.0, done
    assert not Project.objects.filter(pk=project.id).exists()
    assert not Asset.objects.filter(project_id=project.id).exists()
    assert not MaskRevision.objects.filter(asset__project_id=project.id).exists()
    assert not any(default_storage.exists(n) for n in names)
    assert Asset.objects.filter(pk=kept.id).exists() and default_storage.exists(kept.file.name)
    # The finished job stays the starter's own to read.
    assert client_for(users["viewer"]).get(f"/api/v1/jobs/{job['id']}/").status_code == 404
    assert Job.objects.get(pk=job["id"]).project_id is None
    assert list(Job.objects.filter(project__isnull=True).values_list("id", flat=True)) == [job["id"]]


def test_lists_take_the_same_queries_for_more_rows(client_for):
    """Project list (counts per status, cover) and asset list (overlay, reviewer) do not
    query per row."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    owner = factories.user_create()
    client = client_for(owner)

    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    project = factories.project_create(owner=owner)
    label_class = factories.label_class_create(project)
    _label(factories.asset_create(project), label_class)
    few = (queries("/api/v1/projects/"), queries(f"/api/v1/projects/{project.id}/assets/"))
    for _ in range(5):
        other = factories.project_create(owner=owner)
        factories.asset_create(other)
    for _ in range(5):
        asset = factories.asset_create(project)
        _label(asset, label_class)
        services.asset_review(asset=asset, user=owner, decision="reviewed")
    many = (queries("/api/v1/projects/"), queries(f"/api/v1/projects/{project.id}/assets/"))
    assert many == few


def test_project_delete_stops_runs_and_removes_models_and_deployments(
        django_capture_on_commit_callbacks):
    """The service the deletion job runs: a queued run is cancelled, deployments, artifacts
    (with their files) and checkpoints go with the project."""
    from deployments.models import Deployment
    from training.models import Artifact, TrainingRun, TrainingWorkflow

    project = factories.project_create()
    workflow = TrainingWorkflow.objects.create(project=project, name="wf", config={})
    run = TrainingRun.objects.create(project=project, workflow=workflow, config={})
    model_file = default_storage.save(f"artifacts/{project.id}/model.safetensors", ContentFile(b"m"))
    artifact = Artifact.objects.create(project=project, run=run, name="a", family="segformer",
                                       variant="tiny", storage_prefix=f"artifacts/{project.id}/",
                                       files={"model.safetensors": model_file})
    Deployment.objects.create(project=project, artifact=artifact, name="d",
                              status=Deployment.Status.READY)
    checkpoint = default_storage.save(f"checkpoints/{project.id}/{run.id}-k/last/w.bin", ContentFile(b"w"))

    with django_capture_on_commit_callbacks(execute=True):
        services.project_delete(project=project)

    assert not Project.objects.filter(pk=project.id).exists()
    assert not TrainingRun.objects.exists() and not Artifact.objects.exists()
    assert not Deployment.objects.exists()
    assert not default_storage.exists(model_file) and not default_storage.exists(checkpoint)
