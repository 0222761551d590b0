"""Workflows and run start through the API: validation up front, permissions."""
import pytest

from tests import factories
from tests.training.conftest import TINY_SEGFORMER, labelled_project
from training.models import TrainingRun

pytestmark = pytest.mark.django_db


def _post_workflow(client, project_id, config, **extra):
    return client.post(f"/api/v1/projects/{project_id}/workflows/",
                       {"name": "wf", "config": config, **extra}, format="json")


def test_workflow_is_stored_resolved(client_for):
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    config = {"family": "segformer", "variant": "tiny", "steps": 50}
    response = _post_workflow(client, project.id, config)
    assert response.status_code == 201, response.json()
    stored = response.json()["config"]
    assert stored["resolution"] == [64, 64]  # the variant's default
    assert stored["pretrained"] == "none"
    assert stored["steps"] == 50 and stored["schedule"] == "poly"
    listed = client.get(f"/api/v1/projects/{project.id}/workflows/").json()
    assert [w["id"] for w in listed] == [response.json()["id"]]


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"family": "segformer", "variant": "tiny", "pretrained": "imagenet"}, "no pretrained source 'imagenet'"),
        ({"family": "mask2former", "variant": "swin-tiny", "resolution": [100, 100]}, "resolution 100x100"),
        ({"family": "segformer", "variant": "b9"}, "unknown segformer variant 'b9'"),
        ({"family": "segformer", "variant": "b0", "steps": 10, "warmup_steps": 20}, "warmup_steps"),
        ({"family": "segformer", "variant": "tiny", "early_stopping_patience": 2, "keep_best_metric": None},
         "early stopping needs keep_best_metric"),
        ({"family": "segformer", "variant": "tiny", "dropout": 0.5}, "unknown training settings"),
        ({"family": "segformer", "variant": "tiny", "augmentations": {"mixup": True}}, "unknown augmentations"),
        ({"family": "segformer", "variant": "tiny", "num_gpus": 4}, "num_gpus 4"),
    ],
)
def test_impossible_workflows_are_refused_with_the_reason(client_for, config, reason):
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    response = _post_workflow(client, project.id, config)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_workflow"
    assert any(reason in p for p in error["details"]["problems"]), error
    assert not project.training_workflows.exists()


def test_memory_check_uses_the_workers_gpu_size(client_for, settings):
    settings.TESSERA_GPU_MEMORY_GB = 8
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    big = {"family": "mask2former", "variant": "swin-large", "batch_size": 16, "resolution": [1024, 1024]}
    response = _post_workflow(client, project.id, big)
    assert response.status_code == 400
    assert "GB of GPU memory" in response.json()["error"]["message"]
    small = {"family": "segformer", "variant": "b0", "batch_size": 2, "resolution": [512, 512]}
    assert _post_workflow(client, project.id, small).status_code == 201


def test_roles_and_visibility(client_for):
    project = factories.project_create(viewer_x="viewer", annotator_x="annotator")
    viewer = client_for(project.memberships.get(role="viewer").user)
    annotator = client_for(project.memberships.get(role="annotator").user)
    stranger = client_for(factories.user_create())
    assert _post_workflow(viewer, project.id, TINY_SEGFORMER).status_code == 403
    created = _post_workflow(annotator, project.id, TINY_SEGFORMER)
    assert created.status_code == 201
    wf = created.json()["id"]
    assert viewer.get(f"/api/v1/workflows/{wf}/").status_code == 200
    assert stranger.get(f"/api/v1/workflows/{wf}/").status_code == 404
    assert _post_workflow(stranger, project.id, TINY_SEGFORMER).status_code == 404
    assert viewer.post("/api/v1/trainings/", {"workflow": wf}, format="json").status_code == 403
    assert stranger.post("/api/v1/trainings/", {"workflow": wf}, format="json").status_code == 404


def test_a_run_needs_labelled_images(client_for):
    project = factories.project_create()
    factories.label_class_create(project)
    factories.asset_create(project)  # unlabelled
    client = client_for(factories.owner_of(project))
    wf = _post_workflow(client, project.id, TINY_SEGFORMER).json()["id"]
    response = client.post("/api/v1/trainings/", {"workflow": wf}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "no_training_data"
    assert "no labelled images" in response.json()["error"]["message"]
    assert not TrainingRun.objects.exists()


def test_cancel_a_queued_run_and_not_a_finished_one(client_for, django_capture_on_commit_callbacks):
    project = labelled_project(images=4)
    client = client_for(factories.owner_of(project))
    wf = _post_workflow(client, project.id, TINY_SEGFORMER).json()["id"]
    # No worker here: capture the enqueue instead of running it.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = client.post("/api/v1/trainings/", {"workflow": wf}, format="json").json()
    assert run["status"] == "queued" and run["total_steps"] == 30
    assert len(callbacks) == 1
    response = client.post(f"/api/v1/trainings/{run['id']}/cancel/")
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    again = client.post(f"/api/v1/trainings/{run['id']}/cancel/")
    assert again.status_code == 409


def test_model_catalogue(client_for):
    client = client_for(factories.user_create())
    models = client.get("/api/v1/training/models/").json()
    keys = {(m["family"], m["variant"]) for m in models}
    assert ("segformer", "b2") in keys and ("mask2former", "swin-base") in keys
    b0 = next(m for m in models if m["variant"] == "b0")
    assert b0["default_resolution"] == [512, 512] and "imagenet" in b0["pretrained_sources"]


def test_num_gpus_is_capped_by_the_workers_gpus(client_for, settings, monkeypatch):
    settings.TESSERA_GPUS_PER_WORKER = 2
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    assert _post_workflow(client, project.id, {**TINY_SEGFORMER, "num_gpus": 2}).status_code == 201
    response = _post_workflow(client, project.id, {**TINY_SEGFORMER, "num_gpus": 3})
    assert response.status_code == 400
    assert "num_gpus 3 is more than a worker has (2)" in response.json()["error"]["details"]["problems"]

    # With CUDA present, the machine's GPU count caps it too (without, the processes run on CPU).
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    response = _post_workflow(client, project.id, {**TINY_SEGFORMER, "num_gpus": 2})
    assert response.status_code == 400
    assert "num_gpus 2 is more than this machine's 1 GPUs" in response.json()["error"]["message"]
