"""Artifact exports built once by a real worker on the default queue, the export report
(size, speed, mIoU delta) and pruning into a new artifact."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from deployments.models import ArtifactExport
from projects.models import Job
from tests import factories
from tests.conftest import wait_until
from training.modeling.artifact import load_artifact
from training.modeling.inference import predict_class_maps
from training.models import Artifact
from training.selectors import artifact_local_dir

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def _job_done(client, job_id: int) -> dict:
    return wait_until(lambda: (lambda j: j if j["status"] in ("succeeded", "failed") else None)(
        client.get(f"/api/v1/jobs/{job_id}/").json()), timeout=180, interval=0.3)


def test_onnx_export_is_built_once_and_matches_the_model(inference_worker, project_with_artifact,
                                                         client_for):
    import onnxruntime as ort

    from deployments.runtime.processing import postprocess, preprocess

    project, artifact = project_with_artifact
    viewer_client = client_for(factories.owner_of(project))
    url = f"/api/v1/artifacts/{artifact.id}/export/?format=onnx"
    first = viewer_client.get(url)
    assert first.status_code == 202, first.content
    assert first.json()["status"] == "building" and first.json()["job"]["kind"] == "artifact_export"
    again = viewer_client.get(url)  # while building: the same export, no second job
    assert again.status_code in (200, 202)
    job = _job_done(viewer_client, first.json()["job"]["id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["download_url"].endswith("format=onnx")

    response = viewer_client.get(url)
    assert response.status_code == 200
    assert "artifact" in response["Content-Disposition"] and ".onnx" in response["Content-Disposition"]
    data = b"".join(response.streaming_content)
    assert ArtifactExport.objects.get(artifact=artifact, format="onnx").size_bytes == len(data)
    assert Job.objects.filter(kind="artifact_export").count() == 1

    model, meta = load_artifact(artifact_local_dir(artifact=artifact))
    images = [np.random.default_rng(i).integers(0, 255, (64, 64, 3), dtype=np.uint8) for i in range(2)]
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    batch = preprocess(images, tuple(meta["resolution"]), tuple(meta["mean"]), tuple(meta["std"]))
    (logits,) = session.run(None, {session.get_inputs()[0].name: batch})
    got = np.stack(postprocess(np.asarray(logits), [i.shape[:2] for i in images]))
    want = np.stack(predict_class_maps(model, meta, images))
    assert got.shape == want.shape and (got == want).mean() > 0.999

    bad = viewer_client.get(f"/api/v1/artifacts/{artifact.id}/export/?format=tflite")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"


def test_bundle_export_and_listing(inference_worker, project_with_artifact, client_for):
    project, artifact = project_with_artifact
    owner = client_for(factories.owner_of(project))
    started = owner.get(f"/api/v1/artifacts/{artifact.id}/export/?format=bundle")
    assert started.status_code == 202
    assert _job_done(owner, started.json()["job"]["id"])["status"] == "succeeded"
    response = owner.get(f"/api/v1/artifacts/{artifact.id}/export/?format=bundle")
    assert response.status_code == 200
    names = set(zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist())
    assert {"model.onnx", "predict.py", "classes.json", "README.md"} <= names
    listing = owner.get(f"/api/v1/artifacts/{artifact.id}/exports/").json()
    assert [(e["format"], e["status"]) for e in listing["exports"]] == [("bundle", "ready")]
    assert listing["exports"][0]["download_url"].endswith("format=bundle")
    assert listing["report"] is None


def test_report_and_pruning(inference_worker, project_with_artifact, client_for):
    project, artifact = project_with_artifact
    owner = client_for(factories.owner_of(project))
    started = owner.post(f"/api/v1/artifacts/{artifact.id}/exports/",
                         {"formats": ["onnx", "onnx-int8-dynamic", "pruned"], "prune_ratio": 0.5},
                         format="json")
    assert started.status_code == 202, started.json()
    pruned = owner.post(f"/api/v1/artifacts/{artifact.id}/prune/", {"ratio": 0.4}, format="json")
    assert pruned.status_code == 202
    assert owner.post(f"/api/v1/artifacts/{artifact.id}/prune/", {"ratio": 1.5},
                      format="json").status_code == 400

    job = _job_done(owner, started.json()["id"])
    assert job["status"] == "succeeded", job
    report = owner.get(f"/api/v1/artifacts/{artifact.id}/exports/").json()["report"]
    assert report["validation_images"] == 2  # the project's val split
    assert set(report["formats"]) == {"onnx", "onnx-int8-dynamic", "pruned"}
    onnx = report["formats"]["onnx"]
    assert onnx["ok"] and onnx["size_bytes"] > 0 and abs(onnx["miou_delta"]) < 0.01
    assert onnx["speed"]["images_per_s"] > 0 and "path" not in onnx
    assert report["formats"]["pruned"]["sparsity"] == pytest.approx(0.5, abs=0.01)

    job = _job_done(owner, pruned.json()["id"])
    assert job["status"] == "succeeded", job
    new = Artifact.objects.get(pk=job["result"]["artifact_id"])
    assert new.project_id == project.id and new.run is None and new.pk != artifact.pk
    info = new.meta["pruning"]
    assert info["source_artifact"] == artifact.pk and info["ratio"] == 0.4
    assert info["sparsity"] == pytest.approx(0.4, abs=0.01)
    assert info["validation_images"] == 2
    assert info["miou_delta"] == pytest.approx(info["miou"] - info["miou_before"])
    # The new artifact really is sparser: its stored weights have that many zeros.
    from deployments.runtime.export import sparsity

    model, _ = load_artifact(artifact_local_dir(artifact=new))
    assert sparsity(model) == pytest.approx(info["sparsity"], abs=1e-6)
    listed = owner.get(f"/api/v1/artifacts/?project={project.id}").json()["results"]
    assert {a["id"] for a in listed} == {artifact.pk, new.pk}
