"""The model catalogue says which pretrained sources have their weights on this server and
suggests one that does; runs are numbered per project."""
import json

import pytest

from tests import factories
from training.models import TrainingRun, TrainingWorkflow

pytestmark = pytest.mark.django_db


def _spec(catalogue, family, variant):
    return next(m for m in catalogue if (m["family"], m["variant"]) == (family, variant))


def test_catalogue_marks_local_sources_and_suggests_one_present(client_for, settings, tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    settings.TESSERA_WEIGHTS_DIR = str(tmp_path / "weights")
    client = client_for(factories.user_create())

    catalogue = client.get("/api/v1/training/models/").json()
    b0 = _spec(catalogue, "segformer", "b0")
    assert b0["default_pretrained"] == "imagenet"
    assert b0["local_sources"] == dict.fromkeys(b0["pretrained_sources"], False) | {"none": True}
    assert b0["suggested_pretrained"] == "none"  # nothing here: random init, not a failing default
    assert _spec(catalogue, "segformer", "tiny")["local_sources"] == {"none": True}

    # ADE20K weights copied into the weights folder: present, and suggested over "none".
    ade = tmp_path / "weights" / b0["pretrained"]["ade20k"]
    ade.mkdir(parents=True)
    (ade / "config.json").write_text(json.dumps({"model_type": "segformer"}))
    b0 = _spec(client.get("/api/v1/training/models/").json(), "segformer", "b0")
    assert b0["local_sources"]["ade20k"] is True and b0["local_sources"]["imagenet"] is False
    assert b0["suggested_pretrained"] == "ade20k"

    # The default's own weights arrive: the default is suggested again.
    imagenet = tmp_path / "weights" / b0["pretrained"]["imagenet"].replace("/", "--")
    imagenet.mkdir(parents=True)
    (imagenet / "config.json").write_text("{}")
    b0 = _spec(client.get("/api/v1/training/models/").json(), "segformer", "b0")
    assert b0["local_sources"]["imagenet"] is True and b0["suggested_pretrained"] == "imagenet"

    # A copy in the Hugging Face cache counts too (found without any network call).
    repo = tmp_path / "empty-hf-cache" / ("models--" + b0["pretrained"]["cityscapes"].replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "config.json").write_text("{}")
    assert _spec(client.get("/api/v1/training/models/").json(), "segformer", "b0")["local_sources"]["cityscapes"]


def _runs(project, count):
    workflow = TrainingWorkflow.objects.create(project=project, name="wf", config={"steps": 1})
    return [TrainingRun.objects.create(project=project, workflow=workflow, config=workflow.config)
            for _ in range(count)]


def test_runs_are_numbered_within_their_project(client_for):
    owner = factories.user_create()
    first = factories.project_create(owner, name="First")
    second = factories.project_create(owner, name="Second")
    a1, b1, a2, b2, a3 = (_runs(p, 1)[0] for p in (first, second, first, second, first))
    client = client_for(owner)

    listed = client.get(f"/api/v1/trainings/?project={first.id}").json()["results"]
    assert [(r["id"], r["number"]) for r in listed] == [(a3.id, 3), (a2.id, 2), (a1.id, 1)]
    everything = client.get("/api/v1/trainings/").json()["results"]
    assert {r["id"]: r["number"] for r in everything} == {a1.id: 1, a2.id: 2, a3.id: 3, b1.id: 1, b2.id: 2}
    only_queued = client.get(f"/api/v1/trainings/?project={second.id}&status=queued").json()["results"]
    assert [r["number"] for r in only_queued] == [2, 1]  # filters do not renumber
    assert client.get(f"/api/v1/trainings/{b2.id}/").json()["number"] == 2
