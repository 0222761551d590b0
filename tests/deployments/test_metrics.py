"""Prometheus metrics: the web's /metrics and an inference worker's own port parse with
prometheus_client's text parser, and their counters move when a prediction is made; with
JSON logs, the prediction's request id reaches the worker's log."""
from __future__ import annotations

import base64
import io
import json
import urllib.request

import numpy as np
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from config.embedded import free_port
from tests import factories
from tests.conftest import resume_consuming, stop_consuming, wait_until
from tests.processes import stop_process_groups

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return _samples(response.content.decode())


def _png() -> str:
    out = io.BytesIO()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def test_metrics_move_with_a_prediction_in_web_and_worker(start_worker, project_with_artifact, client_for,
                                                           monkeypatch, request, tmp_path):
    project, artifact = project_with_artifact
    owner = client_for(factories.owner_of(project))
    prefix = "metrics-test"
    monkeypatch.setenv("TESSERA_CACHE_PREFIX", prefix)  # a lane and registry of its own
    earlier = stop_consuming("inference")
    request.addfinalizer(lambda: resume_consuming("inference", earlier))
    port = free_port()
    multiproc = tmp_path / "prometheus"  # as in platform/k8s: the pool's processes add up there
    multiproc.mkdir()
    (multiproc / "gauge_livesum_1.db").write_bytes(b"stale")  # a dead container's; removed at start
    proc = start_worker("metrics-inference@tessera", queues=("inference",), concurrency=2,
                        env={"TESSERA_CACHE_PREFIX": prefix, "TESSERA_METRICS_PORT": str(port),
                             "TESSERA_LOG_FORMAT": "json", "PROMETHEUS_MULTIPROC_DIR": str(multiproc)})
    # stopped when the test ends: later tests expect their own inference worker to take loads
    request.addfinalizer(lambda: stop_process_groups([proc]))
    from deployments.registry import inference_workers

    wait_until(lambda: inference_workers(), timeout=30)
    deployment = owner.post("/api/v1/deployments/", {"artifact": artifact.id, "runtime": "pytorch"},
                            format="json").json()
    wait_until(lambda: owner.get(f"/api/v1/deployments/{deployment['id']}/").json()["status"] == "ready",
               timeout=120, interval=0.3)
    ok = ("tessera_predictions_total", (("deployment", str(deployment["id"])), ("status", "200")))
    bad = ("tessera_predictions_total", (("deployment", str(deployment["id"])), ("status", "400")))
    count = ("tessera_prediction_duration_seconds_count", (("deployment", str(deployment["id"])),))
    before = _scrape(owner)

    url = deployment["predict_url"]
    answer = owner.post(url, {"image": _png()}, format="json", HTTP_X_REQUEST_ID="metrics-test-req-1")
    assert answer.status_code == 200 and answer["X-Request-ID"] == "metrics-test-req-1"
    assert owner.post(url, {"image": "not base64!"}, format="json").status_code == 400

    after = _scrape(owner)
    assert after[ok] == before.get(ok, 0) + 1
    assert after[bad] == before.get(bad, 0) + 1
    assert after[count] == before.get(count, 0) + 2
    view = ("tessera_http_requests_total", (("method", "POST"), ("status", "200"), ("view", "deployment-predict")))
    assert after[view] >= before.get(view, 0) + 1
    # Read when scraped: the worker's hot model, the queues, the training runs.
    hot = wait_until(lambda: _scrape(owner).get(
        ("tessera_hot_models", (("artifact", str(artifact.id)), ("worker", "metrics-inference@tessera")))),
        timeout=10)
    assert hot == 1
    assert after[("tessera_inference_workers", ())] == 1
    assert ("tessera_queue_length", (("queue", "predict-lane"),)) in after
    assert ("tessera_training_runs", (("status", "running"),)) in after
    assert ("tessera_embedding_backlog", ()) in after

    # The worker's own endpoint: its queues and the lane request it served.
    worker = _samples(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode())
    assert worker[("tessera_celery_worker_queues", (("queue", "inference"),))] == 1
    assert not (multiproc / "gauge_livesum_1.db").exists() and list(multiproc.glob("counter_*.db"))
    assert worker[("tessera_inference_requests_total", (("artifact", str(artifact.id)), ("outcome", "ok")))] >= 1
    loads = [v for (name, labels), v in worker.items() if name == "tessera_celery_tasks_total"
             and ("task", "deployments.tasks.deployment_load") in labels]
    assert loads and sum(loads) >= 1

    # The worker logged JSON lines, the prediction under the web request's id.
    from django.conf import settings

    lines = (settings.VAR_DIR / "worker-metrics-inference.log").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    served = [r for r in records if r["request_id"] == "metrics-test-req-1"]
    assert served and served[0]["logger"] == "deployments.worker" and "ok" in served[0]["message"]


def test_metrics_token_is_required_when_set(api, settings):
    settings.TESSERA_METRICS_TOKEN = "s3cret"
    assert api.get("/metrics").status_code == 401
    api.credentials(HTTP_AUTHORIZATION="Bearer s3cret")
    response = api.get("/metrics")
    assert response.status_code == 200
    assert any(f.name == "tessera_http_requests" for f in text_string_to_metric_families(response.content.decode()))


def test_a_request_id_is_made_when_none_or_a_bad_one_is_given(api):
    made = api.get("/api/v1/health/live/")["X-Request-ID"]
    assert len(made) == 32
    forged = api.get("/api/v1/health/live/", HTTP_X_REQUEST_ID="bad\nline")["X-Request-ID"]
    assert "\n" not in forged and len(forged) == 32
