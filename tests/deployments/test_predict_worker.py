"""Deploying through a real inference worker: load to ready, predictions over HTTP equal
to the model's own output, batching of concurrent requests, failure to load, delete, and
503 once the worker is gone."""
from __future__ import annotations

import base64
import io
import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image
from rest_framework.test import APIClient

from deployments import registry
from deployments.runtime import rle_decode
from projects.synthetic import make_dataset
from tests import factories
from tests.conftest import resume_consuming, stop_consuming, wait_until
from training.modeling.artifact import load_artifact
from training.modeling.inference import predict_class_maps
from training.selectors import artifact_local_dir

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def _png(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return out.getvalue()


def _class_map(payload: dict) -> np.ndarray:
    out = np.zeros((payload["height"], payload["width"]), np.uint8)
    for prediction in payload["predictions"]:
        mask = rle_decode(prediction["rle"])
        assert int(mask.sum()) == prediction["area"]
        assert not out[mask].any()  # one class per pixel
        out[mask] = prediction["label"]
    return out


def _deploy(owner: APIClient, artifact_id: int, **body) -> dict:
    response = owner.post("/api/v1/deployments/", {"artifact": artifact_id, **body}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "deploying"
    deployment_id = response.json()["id"]
    return wait_until(lambda: (lambda d: d if d["status"] != "deploying" else None)(
        owner.get(f"/api/v1/deployments/{deployment_id}/").json()), timeout=120, interval=0.3)


def test_deployment_answers_with_the_models_own_masks(inference_worker, project_with_artifact,
                                                      client_for):
    project, artifact = project_with_artifact
    owner = client_for(factories.owner_of(project))
    deployment = _deploy(owner, artifact.id, runtime="pytorch")
    assert deployment["status"] == "ready", deployment
    assert deployment["worker"] == "deploy-inference@tessera" and deployment["load_ms"] > 0

    key = owner.post(f"/api/v1/deployments/{deployment['id']}/keys/", {"name": "t"},
                     format="json").json()["key"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    url = deployment["predict_url"]

    model, meta = load_artifact(artifact_local_dir(artifact=artifact))
    images = [s.image for s in make_dataset(3, seed=123, sizes=[(64, 64), (90, 70), (48, 100)])]
    expected = predict_class_maps(model, meta, images)
    assert sum(len(np.unique(m)) for m in expected) > 3  # the model predicts several classes

    # One multipart image -> the object, with polygons and a PNG on request.
    single = client.post(url + "?polygons=true&png=1", {"image": io.BytesIO(_png(images[1]))},
                         format="multipart")
    assert single.status_code == 200, single.json()
    body = single.json()
    assert (body["height"], body["width"]) == images[1].shape[:2]
    assert np.array_equal(_class_map(body), expected[1])
    classes = {c["index"]: c for c in meta["classes"]}
    for prediction in body["predictions"]:
        assert prediction["class_name"] == classes[prediction["label"]]["name"]
        assert prediction["class_id"] == classes[prediction["label"]]["class_id"]
        assert prediction["polygons"] and all(len(p) >= 6 for p in prediction["polygons"])
    png = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["png"]))))
    assert np.array_equal(png, expected[1])
    assert body["timing_ms"]["total"] >= body["timing_ms"]["inference"] > 0

    # Several base64 images in JSON -> {"results": [...]} in order.
    many = client.post(url, {"images": [base64.b64encode(_png(i)).decode() for i in images]},
                       format="json")
    assert many.status_code == 200, many.json()
    results = many.json()["results"]
    assert len(results) == 3 and "png" not in results[0] and "polygons" not in str(results[0])
    for payload, want in zip(results, expected, strict=True):
        assert np.array_equal(_class_map(payload), want)

    # The worker decodes every pixel: a truncated image is a 400 naming it, and nothing
    # of the request is left behind in Redis. EXIF orientation is applied before predicting.
    truncated = _png(images[2])[:-200]
    bad = client.post(url, {"images": [base64.b64encode(_png(images[0])).decode(),
                                       base64.b64encode(truncated).decode()]}, format="json")
    assert bad.status_code == 400, bad.json()
    assert bad.json()["error"]["code"] == "corrupt_image"
    assert bad.json()["error"]["details"] == {"image": 1}
    assert not list(registry.redis_client().scan_iter(match="*predict-input*"))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated 90 degrees counter-clockwise: display turns it back
    rotated = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(np.rot90(images[1]))).save(rotated, "PNG", exif=exif)
    upright = client.post(url, {"image": io.BytesIO(rotated.getvalue())}, format="multipart")
    assert upright.status_code == 200, upright.json()
    assert (upright.json()["height"], upright.json()["width"]) == images[1].shape[:2]
    assert np.array_equal(_class_map(upright.json()), expected[1])

    # Concurrent requests are all answered correctly (and may share forward passes).
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(
            lambda i: client.post(url, {"image": base64.b64encode(_png(images[i % 3])).decode()},
                                  format="json"), range(6)))
    for i, answer in enumerate(answers):
        assert answer.status_code == 200
        assert np.array_equal(_class_map(answer.json()), expected[i % 3])

    # The try-it panel: the owner's own session works too.
    assert owner.post(url, {"image": base64.b64encode(_png(images[0])).decode()},
                      format="json").status_code == 200

    # Deleting the deployment deletes its keys: the key is refused afterwards.
    assert owner.delete(f"/api/v1/deployments/{deployment['id']}/").status_code == 204
    assert client.post(url, {"image": base64.b64encode(_png(images[0])).decode()},
                       format="json").status_code == 401


def test_onnxruntime_deployment_and_a_failed_load(inference_worker, project_with_artifact,
                                                  client_for):
    project, artifact = project_with_artifact
    owner = client_for(factories.owner_of(project))
    deployment = _deploy(owner, artifact.id, runtime="onnxruntime")
    assert deployment["status"] == "ready", deployment
    # The loading worker announced the model before the status turned ready.
    assert deployment["workers_loaded"] >= 1 and deployment["worker"] == "deploy-inference@tessera"
    model, meta = load_artifact(artifact_local_dir(artifact=artifact))
    image = make_dataset(1, seed=7, sizes=[(80, 96)])[0].image
    got = owner.post(deployment["predict_url"], {"image": base64.b64encode(_png(image)).decode()},
                     format="json")
    assert got.status_code == 200, got.json()
    want = predict_class_maps(model, meta, [image])[0]
    assert (_class_map(got.json()) == want).mean() > 0.999  # ONNX vs eager: float rounding only

    # An artifact whose files are broken fails to load, with the reason.
    broken = artifact_local_dir(artifact=artifact) / "tessera.json"
    meta_doc = json.loads(broken.read_text())
    broken.write_text(json.dumps({**meta_doc, "resolution": "wide"}))
    failed = _deploy(owner, artifact.id, runtime="pytorch")
    assert failed["status"] == "failed" and "resolution" in failed["reason"]
    refused = owner.post(failed["predict_url"], {"image": base64.b64encode(_png(image)).decode()},
                         format="json")
    assert refused.status_code == 409


def test_no_inference_worker_gives_503_at_once(start_worker, project_with_artifact, client_for,
                                               monkeypatch, request):
    """A worker of its own (its own registry namespace): stop it, the API answers 503
    without waiting for a timeout."""
    import time

    from deployments.registry import inference_workers

    project, artifact = project_with_artifact
    owner = client_for(factories.owner_of(project))
    monkeypatch.setenv("TESSERA_CACHE_PREFIX", "deploy-test-lonely")
    earlier = stop_consuming("inference")  # the deployment must load on the lonely worker
    request.addfinalizer(lambda: resume_consuming("inference", earlier))
    proc = start_worker("deploy-lonely@tessera", queues=("inference",),
                        env={"TESSERA_CACHE_PREFIX": "deploy-test-lonely"}, concurrency=2)
    wait_until(lambda: inference_workers(), timeout=30)
    deployment = _deploy(owner, artifact.id, runtime="pytorch")
    assert deployment["status"] == "ready"
    body = {"image": base64.b64encode(_png(np.zeros((32, 32, 3), np.uint8))).decode()}
    assert owner.post(deployment["predict_url"], body, format="json").status_code == 200

    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)
    start = time.monotonic()
    response = owner.post(deployment["predict_url"], body, format="json")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "no_inference_worker"
    assert time.monotonic() - start < 2.0


def test_every_inference_worker_preloads_new_and_ready_deployments(
        inference_worker, start_worker, project_with_artifact, client_for):
    """Any inference worker may take the next request from the shared queue, so each one
    loads a new deployment ahead of it, and a worker that starts later loads the ready
    ones; deleting the deployment unloads it everywhere."""
    from deployments.registry import inference_workers

    second = start_worker("deploy-inference-2@tessera", queues=("inference",))
    try:
        wait_until(lambda: len(inference_workers()) >= 2, timeout=60)
        project, artifact = project_with_artifact
        owner = client_for(factories.owner_of(project))
        deployment = _deploy(owner, artifact.id, runtime="onnxruntime", replicas=2)
        assert deployment["status"] == "ready", deployment
        url = f"/api/v1/deployments/{deployment['id']}/"
        ours = {"deploy-inference@tessera", "deploy-inference-2@tessera"}

        def holders() -> set[str]:
            return {w["name"] for w in inference_workers() if artifact.id in w.get("artifacts", [])}

        # (A worker of the session that serves every queue may hold it too.)
        wait_until(lambda: ours <= holders(), timeout=90, interval=0.3)
        assert owner.get(url).json()["workers_loaded"] == len(holders()) >= 2

        # A worker started later (a restart, or one more) loads the ready deployment at
        # once, before any request reaches it.
        third = start_worker("deploy-inference-3@tessera", queues=("inference",))
        try:
            wait_until(lambda: "deploy-inference-3@tessera" in holders(), timeout=90, interval=0.3)
        finally:
            third.send_signal(signal.SIGTERM)
            third.wait(timeout=60)

        assert owner.delete(url).status_code == 204
        wait_until(lambda: not any(artifact.id in w.get("artifacts", []) for w in inference_workers()),
                   timeout=30, interval=0.3)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
