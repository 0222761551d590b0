"""IntelliBrush through the HTTP API, with a real Celery worker computing embeddings.

The test process is the web side (decoder-only tiny SAM); the shared worker fixture runs
the gpu-queue tasks. TESSERA_SAM_MODEL=tiny here; with model vit_b and no checkpoint
anywhere, the classical fallback must answer.
"""

from __future__ import annotations

import base64
import io
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from PIL import Image

from annotator.formats import rle as rlelib
from annotator.intellibrush import clicks, conf, services, store, worker
from annotator.intellibrush.onnx_export import OnnxDecoder
from annotator.intellibrush.sam import EmbeddingRecord, SamEngine, build_sam, clear_engines
from projects import services as project_services
from projects.models import Asset, Job
from projects.synthetic import make_sample
from tests import factories
from tests.conftest import ROOT, resume_consuming, stop_consuming, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture(autouse=True)
def _tiny_sam(settings, tmp_path, monkeypatch):
    settings.TESSERA_SAM_MODEL = "tiny"
    settings.TESSERA_SAM_WAIT_S = 120
    settings.TESSERA_SAM_ONNX_DIR = str(tmp_path / "onnx")
    settings.TESSERA_SAM_PRECOMPUTE = "false"
    monkeypatch.delenv("TESSERA_SAM_CHECKPOINT", raising=False)
    store.hot_cache.clear()
    clear_engines()
    yield
    store.hot_cache.clear()
    clear_engines()


def _png(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return out.getvalue()


def _asset(project, seed: int, width: int = 120, height: int = 90) -> tuple[Asset, object]:
    sample = make_sample(seed, width=width, height=height)
    asset = project_services.asset_create_from_bytes(
        project=project, user=None, name=f"s{seed}.png", data=_png(sample.image)
    )
    # The media root outlives the test database, whose ids restart: start clean.
    store.embeddings_delete_for_asset(asset_id=asset.id)
    return asset, sample


def _mask(rle: dict) -> np.ndarray:
    return rlelib.decode(rle)


def _stored_record(asset: Asset) -> EmbeddingRecord:
    with default_storage.open(store.embedding_key(asset=asset, model_type="tiny"), "rb") as fh:
        return EmbeddingRecord.from_npz_bytes(fh.read())


def test_click_computes_once_then_reuses_and_matches_sam(celery_worker_process, client_for) -> None:
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    asset, _ = _asset(project, seed=9001)
    url = f"/api/v1/assets/{asset.id}/intellibrush/"

    first = client.post(url, {"points": [[60, 40, 1]]}, format="json")
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["method"] == "sam" and body["model_type"] == "tiny"
    assert body["embedding_computed_on_demand"] is True and body["embedding_source"] == "computed"
    assert body["rle"]["size"] == [90, 120] and isinstance(body["rle"]["counts"], str)
    assert body["hint"] is None and body["low_res_logits"] is None

    # The worker stored it under the image's sha256; the answer is SAM's own decode.
    record = _stored_record(asset)
    assert record.embedding.dtype == np.float16 and record.original_size == (90, 120)
    expected = SamEngine(build_sam("tiny"), "tiny").decode(record, np.array([[60, 40]]), np.array([1]))
    assert np.array_equal(_mask(body["rle"]), expected.mask)
    assert body["score"] == pytest.approx(expected.score, abs=1e-5)

    store.hot_cache.clear()  # second click from storage, then from the hot cache
    for _ in range(2):
        again = client.post(url, {"points": [[60, 40, 1], [5, 5, 0]], "return_logits": True},
                            format="json").json()
        assert again["method"] == "sam" and again["embedding_computed_on_demand"] is False
        assert again["embedding_source"] == "cache"
    logits = again["low_res_logits"]
    assert logits["shape"] == [1, 64, 64] and logits["dtype"] == "float16"

    # refinement: previous logits, or the previous mask as RLE
    refined = client.post(url, {"points": [[60, 40, 1]], "mask_input": logits["data"]}, format="json")
    assert refined.status_code == 200, refined.content
    low = np.frombuffer(base64.b64decode(logits["data"]), "<f2").astype(np.float32).reshape(1, 64, 64)
    expected = SamEngine(build_sam("tiny"), "tiny").decode(
        record, np.array([[60, 40]]), np.array([1]), mask_input=low
    )
    assert np.array_equal(_mask(refined.json()["rle"]), expected.mask)
    by_rle = client.post(url, {"points": [[60, 40, 1]], "previous_mask": body["rle"]}, format="json")
    assert by_rle.status_code == 200 and by_rle.json()["method"] == "sam"


def test_concurrent_requests_share_one_computation(celery_worker_process, client_for) -> None:
    project = factories.project_create()
    owner = factories.owner_of(project)
    asset, _ = _asset(project, seed=9002)
    results: list[dict] = []

    def click() -> None:
        try:
            response = client_for(owner).post(
                f"/api/v1/assets/{asset.id}/intellibrush/", {"points": [[30, 30, 1]]}, format="json"
            )
            results.append(response.json())
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert len(results) == 3, results
    assert sorted(r["embedding_source"] for r in results) == ["computed", "joined", "joined"]
    assert len({r["rle"]["counts"] for r in results}) == 1
    _, files = default_storage.listdir(f"embeddings/{asset.id}")
    assert files == [f"{asset.sha256}-tiny.npz"]


def test_browser_path_embedding_and_onnx_decoder(celery_worker_process, client_for) -> None:
    """What the browser does: fetch the embedding and the decoder, decode the click itself.
    It must draw the mask the server would answer."""
    project = factories.project_create(ib_annotator="annotator", ib_viewer="viewer")
    viewer = project.memberships.get(role="viewer").user
    client = client_for(viewer)
    asset, _ = _asset(project, seed=9003, width=100, height=140)

    response = client.get(f"/api/v1/assets/{asset.id}/embedding/")
    assert response.status_code == 200, response.content
    payload = response.json()
    assert payload["computed_on_demand"] is True and payload["model_type"] == "tiny"
    info = payload["transform"]
    assert info["original_size"] == [140, 100] and info["embedding_shape"] == [1, 64, 16, 16]
    embedding = np.frombuffer(base64.b64decode(payload["embedding"]), "<f2").reshape(info["embedding_shape"])

    binary = client.get(f"/api/v1/assets/{asset.id}/embedding/?encoding=binary")
    assert binary.status_code == 200 and binary["X-Sam-Embedding-Shape"] == "1,64,16,16"
    assert binary["X-Sam-Original-Size"] == "140,100" and binary["X-Sam-Computed-On-Demand"] == "false"
    assert np.array_equal(np.frombuffer(binary.content, "<f2").reshape(1, 64, 16, 16), embedding)

    decoder = client.get(payload["decoder_url"])
    assert decoder.status_code == 200
    onnx_bytes = b"".join(decoder.streaming_content)
    path = clicks.decoder_onnx_file(model_type="tiny")
    assert path.read_bytes() == onnx_bytes
    again = client.get(payload["decoder_url"])
    assert again["ETag"] == decoder["ETag"]

    record = EmbeddingRecord(embedding.copy(), tuple(info["input_size"]), tuple(info["original_size"]),
                             info["image_size"], info["model_type"])
    in_browser = OnnxDecoder(path).decode(record, np.array([[50, 70]]), np.array([1]))
    annotator = client_for(project.memberships.get(role="annotator").user)
    server = annotator.post(f"/api/v1/assets/{asset.id}/intellibrush/", {"points": [[50, 70, 1]]},
                            format="json").json()
    assert server["embedding_source"] == "cache"
    assert np.array_equal(_mask(server["rle"]), in_browser.mask)
    assert server["score"] == pytest.approx(in_browser.score, abs=1e-4)


def test_changed_image_gets_a_new_embedding(celery_worker_process, client_for) -> None:
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    asset, _ = _asset(project, seed=9004)
    url = f"/api/v1/assets/{asset.id}/intellibrush/"
    assert client.post(url, {"points": [[20, 20, 1]]}, format="json").json()["embedding_source"] == "computed"
    old_key = store.embedding_key(asset=asset, model_type="tiny")

    # The image is edited in place: new pixels, new sha256, same asset.
    import hashlib

    from django.core.files.base import ContentFile

    data = _png(make_sample(9005, width=120, height=90).image)
    asset.file.save("edited.png", ContentFile(data), save=False)
    asset.sha256 = hashlib.sha256(data).hexdigest()
    asset.save()
    body = client.post(url, {"points": [[20, 20, 1]]}, format="json").json()
    assert body["embedding_source"] == "computed" and body["embedding_computed_on_demand"]
    new_key = store.embedding_key(asset=asset, model_type="tiny")
    assert new_key != old_key and default_storage.exists(new_key)
    assert not default_storage.exists(old_key)  # stale embedding removed by the worker


def test_precompute_job_reports_progress_then_clicks_hit_the_cache(celery_worker_process, client_for) -> None:
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    assets = [_asset(project, seed=9010 + i, width=64, height=48)[0] for i in range(3)]
    status_url = f"/api/v1/projects/{project.id}/intellibrush/embeddings/"
    before = client.get(status_url).json()
    assert before["total"] == 3 and before["ready"] == 0 and before["job"] is None

    started = client.post(status_url)
    assert started.status_code == 202, started.content
    job_id = started.json()["job_id"]
    job = wait_until(lambda: (j := client.get(f"/api/v1/jobs/{job_id}/").json())["status"]
                     in ("succeeded", "failed") and j, timeout=120)
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0 and job["result"]["computed"] == 3 and job["kind"] == "sam_embeddings"
    after = client.get(status_url).json()
    assert after["ready"] == 3 and after["job"]["status"] == "succeeded"

    body = client.post(f"/api/v1/assets/{assets[1].id}/intellibrush/", {"box": [5, 5, 50, 40]},
                       format="json").json()
    assert body["embedding_source"] == "cache" and body["method"] == "sam"


def test_uploads_announce_new_assets_and_deletions_remove_embeddings(
        celery_worker_process, client_for, settings) -> None:
    # projects announces (projects.signals); IntelliBrush, subscribed in its AppConfig,
    # precomputes the new images' embeddings and removes them with the assets
    settings.TESSERA_SAM_PRECOMPUTE = "true"
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    files = [SimpleUploadedFile(f"u{i}.png", _png(make_sample(9100 + i, width=64, height=48).image))
             for i in range(2)]
    response = client.post(f"/api/v1/projects/{project.id}/assets/", {"files": files}, format="multipart")
    assert response.status_code == 201, response.content
    job = Job.objects.get(project=project, kind=conf.JOB_KIND)
    assert job.params == {"model_type": "tiny", "total": 2}
    job = wait_until(lambda: (j := Job.objects.get(pk=job.pk)).status in ("succeeded", "failed") and j,
                     timeout=120)
    assert job.status == "succeeded" and job.result["total"] == 2, (job.status, job.result, job.errors)
    assets = list(Asset.objects.filter(project=project))
    keys = [store.embedding_key(asset=a, model_type="tiny") for a in assets]
    assert len(keys) == 2 and all(default_storage.exists(k) for k in keys)

    project_services.assets_delete(asset_ids=[assets[0].id])
    assert not default_storage.exists(keys[0]) and default_storage.exists(keys[1])
    store.embeddings_delete_for_asset(asset_id=assets[1].id)


#: Seconds added to each embedding by the slow worker (tests/intellibrush/slow_worker).
EMBED_DELAY_S = 0.4


@pytest.fixture
def slow_gpu_worker(start_celery_worker):
    """The only gpu worker during the test (one process, as in production: one task per
    GPU), whose embeddings take EMBED_DELAY_S longer. Stopped at the end of the test."""
    earlier = stop_consuming("gpu")
    hook = Path(__file__).resolve().parent / "slow_worker"
    worker = start_celery_worker(
        queues=("gpu",), name="ib-slow-gpu@tessera",
        env={"PYTHONPATH": f"{hook}{os.pathsep}{ROOT}", "TESSERA_TEST_EMBED_DELAY_S": str(EMBED_DELAY_S)},
    )
    yield worker
    os.killpg(worker.pid, signal.SIGTERM)  # warm shutdown: a running slice finishes first
    worker.wait(timeout=60)
    resume_consuming("gpu", earlier)


def test_click_goes_ahead_of_a_precompute_backlog(slow_gpu_worker, client_for) -> None:
    """A project's 20 images are being embedded in the background on the only gpu worker;
    a click on another image gets its embedding computed next, not after the backlog.

    Backlog: 20 x 0.4 s = 8 s, less than one precompute slice's 10 s budget, so a click
    that waited for the slice to end would wait for the whole backlog. ~20 s in all.
    """
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    backlog = [_asset(project, seed=9100 + i, width=64, height=48)[0] for i in range(20)]
    clicked, _ = _asset(project, seed=9120, width=64, height=48)
    job = services.embeddings_precompute_start(project=project, asset_ids=[a.id for a in backlog])
    assert job is not None

    def done() -> int:
        return round(Job.objects.get(pk=job.pk).progress * len(backlog))

    wait_until(lambda: done() >= 3, timeout=60, interval=0.05)
    done_before, started = done(), time.monotonic()
    response = client.post(f"/api/v1/assets/{clicked.id}/intellibrush/", {"points": [[30, 20, 1]]},
                           format="json")
    elapsed, done_after = time.monotonic() - started, done()
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["method"] == "sam" and body["embedding_source"] == "computed"
    # At most the embedding in progress (and one that raced with reading the progress)
    # ran before the click's own; the rest of the backlog was still waiting.
    assert done_after - done_before <= 2, (done_before, done_after, elapsed)
    assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING

    # The background job then carries on where it stopped and embeds everything once.
    finished = wait_until(
        lambda: (j := Job.objects.get(pk=job.pk)).status in (Job.Status.SUCCEEDED, Job.Status.FAILED) and j,
        timeout=120,
    )
    assert finished.status == Job.Status.SUCCEEDED, finished.errors
    assert finished.result["computed"] == 20 and finished.result["already_stored"] == 0
    assert all(default_storage.exists(store.embedding_key(asset=a, model_type="tiny"))
               for a in [*backlog, clicked])


def test_precompute_slice_stops_after_the_embedding_in_progress(monkeypatch) -> None:
    """The slice logic alone (no worker): an on-demand enqueue during an embedding ends the
    slice after it; the next slice is not cut short by that same, already-served click."""
    project = factories.project_create()
    ids = [_asset(project, seed=9130 + i, width=32, height=24)[0].id for i in range(4)]
    job = project_services.job_create(project=project, user=None, kind=conf.JOB_KIND)
    computed: list[int] = []

    def compute(*, asset, model_type):
        computed.append(asset.id)
        if len(computed) == 2:
            store.on_demand_enqueued()  # a click arrives while the 2nd one is computed
        return None, True

    monkeypatch.setattr(worker, "embedding_compute", compute)
    state = {"remaining": ids, "done": 0, "total": 4, "computed": 0, "errors": [],
             "on_demand_seen": store.on_demand_seq()}
    state = worker.embeddings_project_step(job_id=job.pk, model_type="tiny", state=state)
    assert computed == ids[:2] and state["remaining"] == ids[2:]
    state = worker.embeddings_project_step(job_id=job.pk, model_type="tiny", state=state)
    assert computed == ids and state["remaining"] == []
    assert Job.objects.get(pk=job.pk).status == Job.Status.SUCCEEDED


def test_roles_and_validation(client_for) -> None:
    project = factories.project_create(ib_viewer2="viewer")
    owner, viewer = factories.owner_of(project), project.memberships.get(role="viewer").user
    outsider = factories.user_create()
    asset, _ = _asset(project, seed=9020)
    url = f"/api/v1/assets/{asset.id}/intellibrush/"
    click = {"points": [[10, 10, 1]]}

    denied = client_for(viewer).post(url, click, format="json")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
    assert client_for(outsider).post(url, click, format="json").status_code == 404
    assert client_for(outsider).get(f"/api/v1/assets/{asset.id}/embedding/").status_code == 404
    assert client_for(outsider).get(
        f"/api/v1/projects/{project.id}/intellibrush/embeddings/").status_code == 404
    assert client_for(viewer).post(f"/api/v1/projects/{project.id}/intellibrush/embeddings/").status_code == 403

    client = client_for(owner)
    for bad in (
        {"points": [[500, 10, 1]]},  # outside the 120x90 image
        {"points": [[10, 10, 2]]},  # label must be 0/1
        {"points": [[10, 10]]},  # missing label
        {"points": [[10, 10, 0]]},  # exclude only: nothing to segment
        {},
        {"box": [50, 10, 20, 40]},  # x0 > x1
        {"points": [[10, 10, 1]], "previous_mask": {"size": [5, 5], "counts": "x"}},
        {"points": [[10, 10, 1]], "mask_input": "not base64!"},
    ):
        response = client.post(url, bad, format="json")
        assert response.status_code == 400, (bad, response.content)
        assert response.json()["error"]["code"] == "validation_error"
    assert client.get("/api/v1/intellibrush/decoder.onnx?model_type=vit_x").status_code == 400


def test_without_weights_the_fallback_answers(client_for, settings, tmp_path, monkeypatch) -> None:
    settings.TESSERA_SAM_MODEL = "vit_b"
    settings.TESSERA_WEIGHTS_DIR = str(tmp_path / "empty-weights")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    asset, sample = _asset(project, seed=9030, width=128, height=128)
    target = max(sample.instances, key=lambda i: i.area)
    ys, xs = np.nonzero(target.mask)
    inside = int(np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2))
    x, y = int(xs[inside]), int(ys[inside])

    body = client.post(f"/api/v1/assets/{asset.id}/intellibrush/", {"points": [[x, y, 1]]},
                       format="json").json()
    assert body["method"] == "fallback" and body["model_type"] is None
    assert "TESSERA_WEIGHTS_DIR" in body["hint"] and "sam_vit_b_01ec64.pth" in body["hint"]
    mask = _mask(body["rle"])
    iou = (mask & target.mask).sum() / (mask | target.mask).sum()
    assert iou >= 0.8, iou

    for url in (f"/api/v1/assets/{asset.id}/embedding/", "/api/v1/intellibrush/decoder.onnx"):
        response = client.get(url)
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["code"] == "sam_unavailable" and "TESSERA_WEIGHTS_DIR" in error["message"]
    assert not default_storage.exists(f"embeddings/{asset.id}")


def test_server_clicks_use_the_onnx_decoder_and_agree_with_pytorch(celery_worker_process, client_for,
                                                                   settings) -> None:
    """Default clicks run the exported graph in ONNX Runtime (what browsers run); an explicit
    multimask choice, or TESSERA_SAM_SERVER_ONNX=false, goes to the PyTorch decoder."""
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    asset, _ = _asset(project, seed=9002)
    url = f"/api/v1/assets/{asset.id}/intellibrush/"
    prompts = [{"points": [[60, 40, 1]]}, {"points": [[60, 40, 1], [10, 80, 0]]},
               {"box": [20, 10, 100, 70]}, {"points": [[50, 45, 1]], "box": [20, 10, 100, 70]}]
    for prompt in prompts:
        by_onnx = client.post(url, prompt, format="json").json()
        assert by_onnx["decoder"] == "onnxruntime", by_onnx
        settings.TESSERA_SAM_SERVER_ONNX = "false"
        by_torch = client.post(url, prompt, format="json").json()
        settings.TESSERA_SAM_SERVER_ONNX = None
        assert by_torch["decoder"] == "pytorch"
        assert (_mask(by_onnx["rle"]) == _mask(by_torch["rle"])).mean() >= 0.999, prompt
        assert by_onnx["score"] == pytest.approx(by_torch["score"], abs=1e-4)
    explicit = client.post(url, {"points": [[60, 40, 1]], "multimask": False}, format="json").json()
    assert explicit["decoder"] == "pytorch"
