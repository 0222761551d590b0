"""API keys (shown once, stored hashed, revocable, bound to one deployment), throttling,
and every refusal of the predict endpoint that happens before work reaches a worker."""
from __future__ import annotations

import base64
import hashlib
import io
import json

import numpy as np
import pytest
from PIL import Image
from rest_framework.test import APIClient

from common.errors import ApplicationError
from deployments import api_keys, predict, registry, worker
from deployments.lane import LANE_QUEUE, answer_error, error_answer, inputs_take
from deployments.models import ApiKey, Deployment
from projects.models import Membership, Role
from tests import factories
from tests.deployments.conftest import ready_deployment

pytestmark = pytest.mark.django_db


def _png(width: int = 40, height: int = 30) -> bytes:
    rng = np.random.default_rng(width * height)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(out, "PNG")
    return out.getvalue()


def _bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _new_key(owner_client: APIClient, deployment: Deployment, **body) -> dict:
    response = owner_client.post(f"/api/v1/deployments/{deployment.id}/keys/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_key_is_shown_once_stored_hashed_listed_and_revoked(project_with_artifact, client_for):
    project, artifact = project_with_artifact
    deployment = ready_deployment(artifact)
    owner = client_for(factories.owner_of(project))
    created = _new_key(owner, deployment, name="ci")
    token = created["key"]
    assert token.startswith("tsk_") and created["prefix"] in token and len(token) > 40

    row = ApiKey.objects.get(pk=created["id"])
    assert row.hashed_key == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(ApiKey.objects.filter(pk=row.pk).values().first())

    listed = owner.get(f"/api/v1/deployments/{deployment.id}/keys/").json()
    assert [k["id"] for k in listed] == [row.pk]
    assert "key" not in listed[0] and listed[0]["revoked"] is False and listed[0]["name"] == "ci"

    # The key authenticates (no image -> 400, past authentication) until it is revoked.
    assert _bearer(token).post(f"/api/v1/deployments/{deployment.id}/predict/", {},
                               format="json").status_code == 400
    assert ApiKey.objects.get(pk=row.pk).last_used_at is not None
    assert owner.delete(f"/api/v1/deployments/{deployment.id}/keys/{row.pk}/").status_code == 204
    refused = _bearer(token).post(f"/api/v1/deployments/{deployment.id}/predict/", {}, format="json")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "authentication_failed"
    listed = owner.get(f"/api/v1/deployments/{deployment.id}/keys/").json()
    assert listed[0]["revoked"] is True and listed[0]["revoked_at"]


def test_keys_reach_only_their_own_deployment(project_with_artifact, client_for):
    project, artifact = project_with_artifact
    first, second = ready_deployment(artifact), ready_deployment(artifact)
    owner = client_for(factories.owner_of(project))
    token_a = _new_key(owner, first)["key"]
    other = _bearer(token_a).post(f"/api/v1/deployments/{second.id}/predict/",
                                  {"image": base64.b64encode(_png()).decode()}, format="json")
    assert other.status_code == 404
    unknown = _bearer(token_a).post("/api/v1/deployments/999999/predict/", {}, format="json")
    assert unknown.status_code == 404
    # Keys of A cannot list or manage anything either (they are not user credentials).
    assert _bearer(token_a).get(f"/api/v1/deployments/{first.id}/keys/").status_code in (401, 403)


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer tsk_nope_nope", "Bearer abc",
                                    "Bearer tsk_00000000_" + "x" * 43])
def test_missing_or_wrong_keys_are_401(project_with_artifact, header):
    _, artifact = project_with_artifact
    deployment = ready_deployment(artifact)
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.post(f"/api/v1/deployments/{deployment.id}/predict/", {}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_correct_prefix_with_a_wrong_secret_is_refused(project_with_artifact, client_for):
    project, artifact = project_with_artifact
    deployment = ready_deployment(artifact)
    token = _new_key(client_for(factories.owner_of(project)), deployment)["key"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = _bearer(forged).post(f"/api/v1/deployments/{deployment.id}/predict/", {}, format="json")
    assert response.status_code == 401


def test_each_key_is_throttled_on_its_own(project_with_artifact, client_for):
    project, artifact = project_with_artifact
    deployment = ready_deployment(artifact)
    owner = client_for(factories.owner_of(project))
    slow = _new_key(owner, deployment, rate="2/min")["key"]
    fast = _new_key(owner, deployment)["key"]
    url = f"/api/v1/deployments/{deployment.id}/predict/"
    codes = [_bearer(slow).post(url, {}, format="json").status_code for _ in range(2)]
    assert codes == [400, 400]  # allowed through (and refused for having no image)
    throttled = _bearer(slow).post(url, {}, format="json")
    assert throttled.status_code == 429
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert throttled.json()["error"]["code"] == "throttled"
    assert _bearer(fast).post(url, {}, format="json").status_code == 400  # its own budget
    bad = owner.post(f"/api/v1/deployments/{deployment.id}/keys/", {"rate": "often"}, format="json")
    assert bad.status_code == 400


def test_bad_inputs(project_with_artifact, client_for, settings):
    project, artifact = project_with_artifact
    deployment = ready_deployment(artifact)
    token = _new_key(client_for(factories.owner_of(project)), deployment)["key"]
    client = _bearer(token)
    url = f"/api/v1/deployments/{deployment.id}/predict/"

    def code(response) -> tuple[int, str]:
        return response.status_code, response.json()["error"]["code"]

    assert code(client.post(url, {}, format="json")) == (400, "no_image")
    # (Truncated pixel data passes these header checks; the worker refuses it, see
    # test_predict_worker.)
    assert code(client.post(url, {"image": base64.b64encode(b"not an image").decode()},
                            format="json")) == (400, "not_an_image")
    assert code(client.post(url, {"image": "%%%not base64"}, format="json")) == (400, "invalid_image")
    assert code(client.post(url, {"images": "x"}, format="json")) == (400, "invalid_image")

    settings.TESSERA_PREDICT_MAX_IMAGE_PIXELS = 1000
    assert code(client.post(url, {"image": io.BytesIO(_png(40, 30))}, format="multipart")) == (
        413, "too_many_pixels")
    settings.TESSERA_PREDICT_MAX_IMAGE_PIXELS = 10_000_000
    settings.TESSERA_PREDICT_MAX_IMAGE_BYTES = 500
    assert code(client.post(url, {"image": io.BytesIO(_png(40, 30))}, format="multipart")) == (
        413, "file_too_large")
    assert code(client.post(url, {"images": [base64.b64encode(_png()).decode()]},
                            format="json")) == (413, "file_too_large")
    settings.TESSERA_PREDICT_MAX_IMAGE_BYTES = 10_000_000
    settings.TESSERA_PREDICT_MAX_IMAGES = 2
    three = [base64.b64encode(_png(8, 8)).decode()] * 3
    assert code(client.post(url, {"images": three}, format="json")) == (413, "too_many_images")
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000  # JSON bodies are read into memory
    big = client.post(url, {"image": base64.b64encode(_png(64, 64)).decode() + " " * 1000},
                      format="json")
    assert code(big) == (413, "request_too_large") and "multipart" in big.json()["error"]["message"]
    # Files are not held to it: this one passes every check and finds no worker.
    assert code(client.post(url, {"image": io.BytesIO(_png(64, 64))}, format="multipart")) == (
        503, "no_inference_worker")
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

    deployment.status = Deployment.Status.DEPLOYING  # (saves drop the cached key + deployment)
    deployment.save(update_fields=["status"])
    response = client.post(url, {"image": base64.b64encode(_png()).decode()}, format="json")
    assert code(response) == (409, "deployment_not_ready")
    deployment.status, deployment.reason = Deployment.Status.FAILED, "ExportError: no ONNX for you"
    deployment.save(update_fields=["status", "reason"])
    response = client.post(url, {"image": base64.b64encode(_png()).decode()}, format="json")
    assert response.status_code == 409 and "no ONNX for you" in response.json()["error"]["message"]


def test_roles_for_deployments_keys_and_the_try_it_panel(project_with_artifact, client_for):
    project, artifact = project_with_artifact
    deployment = ready_deployment(artifact)
    Membership.objects.create(project=project, user=factories.user_create("ann"), role=Role.ANNOTATOR)
    Membership.objects.create(project=project, user=factories.user_create("view"), role=Role.VIEWER)
    annotator = client_for(Membership.objects.get(project=project, role=Role.ANNOTATOR).user)
    viewer = client_for(Membership.objects.get(project=project, role=Role.VIEWER).user)
    stranger = client_for(factories.user_create())
    url = f"/api/v1/deployments/{deployment.id}/"

    assert viewer.get(url).json()["id"] == deployment.id
    assert [d["id"] for d in viewer.get("/api/v1/deployments/").json()["results"]] == [deployment.id]
    assert stranger.get(url).status_code == 404
    assert stranger.get("/api/v1/deployments/").json()["results"] == []
    assert annotator.post("/api/v1/deployments/", {"artifact": artifact.id}, format="json").status_code == 403
    assert annotator.get(url + "keys/").status_code == 403
    assert annotator.delete(url).status_code == 403
    # Members with a session may use the try-it panel (annotator and up), not viewers.
    assert annotator.post(url + "predict/", {}, format="json").json()["error"]["code"] == "no_image"
    assert viewer.post(url + "predict/", {}, format="json").status_code == 403
    assert stranger.post(url + "predict/", {}, format="json").status_code == 404


def test_creating_needs_a_worker_that_can_run_it(project_with_artifact, client_for, monkeypatch):
    project, artifact = project_with_artifact
    owner = client_for(factories.owner_of(project))
    # A registry namespace no worker writes to: nobody is running.
    monkeypatch.setenv("TESSERA_CACHE_PREFIX", "deploy-test-empty-registry")
    response = owner.post("/api/v1/deployments/", {"artifact": artifact.id}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "no_inference_worker"
    assert not Deployment.objects.exists()

    # One CPU-only worker announces itself the way real workers do.
    monkeypatch.setenv("TESSERA_CACHE_PREFIX", "deploy-test-cpu-registry")
    registry.inference_worker_heartbeat(
        info={"name": "cpu-only@test", "cuda": False, "onnx_providers": ["CPUExecutionProvider"]},
        ttl_s=30)
    try:
        cuda = owner.post("/api/v1/deployments/", {"artifact": artifact.id, "device": "cuda"},
                          format="json")
        assert cuda.status_code == 400 and cuda.json()["error"]["code"] == "runtime_unavailable"
        assert "CUDAExecutionProvider" in cuda.json()["error"]["message"]
        torch_cuda = owner.post("/api/v1/deployments/", {"artifact": artifact.id, "device": "cuda",
                                                         "runtime": "pytorch"}, format="json")
        assert "no CUDA" in torch_cuda.json()["error"]["message"]
        two = owner.post("/api/v1/deployments/", {"artifact": artifact.id, "replicas": 2}, format="json")
        assert two.status_code == 400 and two.json()["error"]["code"] == "not_enough_workers"
        assert not Deployment.objects.exists()
    finally:
        registry.inference_worker_forget(name="cpu-only@test")


@pytest.mark.django_db(transaction=True)  # the lane thread reads the artifact row
def test_predict_lane_timeout_and_a_request_whose_caller_gave_up(project_with_artifact, settings,
                                                                 monkeypatch):
    """A worker is registered but takes nothing from the lane: the caller gets a 503 after
    TESSERA_PREDICT_TIMEOUT_S, its request is withdrawn and its images deleted. A lane
    thread that pops a request past its deadline drops it unanswered; a live one is
    answered on its reply list."""
    import threading
    import time

    project, artifact = project_with_artifact
    deployment = ready_deployment(artifact)
    key = api_keys.api_key_create(deployment=deployment, user=factories.owner_of(project))[1]
    monkeypatch.setenv("TESSERA_CACHE_PREFIX", "deploy-test-lane")
    settings.TESSERA_PREDICT_TIMEOUT_S = 0.5
    redis = registry.redis_client()
    queue = registry.redis_key(LANE_QUEUE)
    redis.delete(queue)
    registry.inference_worker_heartbeat(info={"name": "idle@test"}, ttl_s=30)
    try:
        start = time.monotonic()
        response = _bearer(key).post(f"/api/v1/deployments/{deployment.id}/predict/",
                                     {"image": base64.b64encode(_png()).decode()}, format="json")
        assert response.status_code == 503, response.json()
        assert response.json()["error"]["code"] == "inference_timeout"
        assert time.monotonic() - start >= 0.5
        assert not list(redis.scan_iter(match=registry.redis_key("predict-input:*")))
        assert redis.llen(queue) == 0

        # A lane thread drops an expired request; a live one (an image that is gone)
        # gets its answer.
        def queued(name: str, deadline: float) -> str:
            return json.dumps(
                {"artifact_id": artifact.id, "runtime": "onnxruntime", "device": "cpu",
                 "polygons": False, "png": False, "deadline": deadline,
                 **{field: registry.redis_key(f"predict-{field}:{name}")
                    for field in ("reply", "taken")},
                 "inputs": [registry.redis_key(f"predict-input:{name}:0")]})

        live_reply = registry.redis_key("predict-reply:live")
        redis.lpush(queue, queued("expired", time.time() - 1), queued("live", time.time() + 30))
        stop = threading.Event()
        lane = threading.Thread(target=worker.predict_lane_serve, args=(stop,),
                                kwargs={"poll_s": 0.1, "worker": "idle@test"})
        lane.start()
        try:
            answer = redis.brpop([live_reply], timeout=10)
        finally:
            stop.set()
            lane.join(timeout=10)
        assert answer is not None
        # The API's error shape, with the status the web answers with.
        assert json.loads(answer[1]) == {
            "ok": False, "status": 503, "error": {
                "code": "input_expired", "message": "Image 0 expired before a worker took it.",
                "details": {}}}
        assert redis.llen(queue) == 0
        assert not list(redis.scan_iter(match=registry.redis_key("predict-reply:*")))  # none to the dead one
    finally:
        registry.inference_worker_forget(name="idle@test")


def test_a_worker_that_dies_holding_a_request_is_a_503_before_the_timeout(
        project_with_artifact, settings, monkeypatch):
    """The lane marks a request taken by its worker; the waiting caller watches that
    worker's heartbeat and answers 503 `inference_worker_lost` once it is gone, and
    `no_inference_worker` for a request nobody took when every worker is gone, instead of
    waiting out TESSERA_PREDICT_TIMEOUT_S (60 s here)."""
    import threading

    project, artifact = project_with_artifact
    deployment = ready_deployment(artifact)
    key = api_keys.api_key_create(deployment=deployment, user=factories.owner_of(project))[1]
    monkeypatch.setenv("TESSERA_CACHE_PREFIX", "deploy-test-lost")
    monkeypatch.setattr(predict, "LANE_CHECK_S", 0.2)
    settings.TESSERA_PREDICT_TIMEOUT_S = 60
    redis = registry.redis_client()
    redis.delete(registry.redis_key(LANE_QUEUE))
    url = f"/api/v1/deployments/{deployment.id}/predict/"
    body = {"image": base64.b64encode(_png()).decode()}

    # Nobody takes the request, and the only worker's heartbeat runs out.
    registry.inference_worker_heartbeat(info={"name": "gone@test"}, ttl_s=1)
    response = _bearer(key).post(url, body, format="json")
    assert response.status_code == 503, response.json()
    assert response.json()["error"]["code"] == "no_inference_worker"

    # A worker takes the request, then stops: its run never returns, no more heartbeats.
    stuck = threading.Event()
    monkeypatch.setattr(worker, "predict_run", lambda **kwargs: stuck.wait(30) and {})
    registry.inference_worker_heartbeat(info={"name": "dying@test"}, ttl_s=1.5)
    stop = threading.Event()
    lane = threading.Thread(target=worker.predict_lane_serve, args=(stop,),
                            kwargs={"poll_s": 0.1, "worker": "dying@test"})
    lane.start()
    try:
        response = _bearer(key).post(url, body, format="json")
    finally:
        stop.set()
        stuck.set()
        lane.join(timeout=10)
    assert response.status_code == 503, response.json()
    error = response.json()["error"]
    assert error["code"] == "inference_worker_lost" and "dying@test" in error["message"]
    assert not list(redis.scan_iter(match=registry.redis_key("predict-input:*")))


def test_key_lookups_are_cached_and_every_change_is_seen_at_once(project_with_artifact,
                                                                 django_assert_num_queries):
    """The predict endpoint authenticates without a database query once a key is cached;
    saving the deployment or revoking the key drops the cached row."""
    project, artifact = project_with_artifact
    deployment = ready_deployment(artifact)
    key, token = api_keys.api_key_create(deployment=deployment, user=factories.owner_of(project))
    assert api_keys.api_key_authenticate(token=token).deployment.status == Deployment.Status.READY
    with django_assert_num_queries(0):
        assert api_keys.api_key_authenticate(token=token).pk == key.pk
        assert api_keys.api_key_authenticate(token=token[:-2] + "xx") is None  # wrong secret
    deployment.status = Deployment.Status.FAILED
    deployment.save(update_fields=["status"])
    assert api_keys.api_key_authenticate(token=token).deployment.status == Deployment.Status.FAILED
    api_keys.api_key_revoke(key=ApiKey.objects.get(pk=key.pk))
    assert api_keys.api_key_authenticate(token=token) is None


def test_the_throttle_counts_concurrent_requests_exactly():
    """The window is checked and updated in one atomic step: 20 requests racing on a key
    of 5/min let exactly 5 through, and the refused ones learn when to retry."""
    import secrets
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    from deployments.auth import PredictRateThrottle

    request = SimpleNamespace(auth=ApiKey(pk=10**9, prefix=secrets.token_hex(4), rate="5/min"),
                              user=None)

    def attempt(_) -> tuple[bool, float | None]:
        throttle = PredictRateThrottle()
        return throttle.allow_request(request, None), throttle.wait()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(20)))
    assert sum(allowed for allowed, _ in results) == 5
    assert all(0 < wait <= 60 for allowed, wait in results if not allowed)


def test_a_request_sent_while_others_are_in_flight_tells_the_worker(project_with_artifact,
                                                                    monkeypatch):
    """The web counts its prediction requests per deployment from the start of the view; a
    request sent while more are in flight than workers hold the model is marked `company`,
    which the worker announces to the model (one image more) so a burst's first forward
    does not take every core. Two requests for two workers, or requests to another
    deployment, are not company."""
    import threading

    project, artifact = project_with_artifact
    deployment = ready_deployment(artifact)
    key = api_keys.api_key_create(deployment=deployment, user=factories.owner_of(project))[1]
    monkeypatch.setenv("TESSERA_CACHE_PREFIX", "deploy-test-company")
    registry.redis_client().delete(registry.redis_key(LANE_QUEUE))
    seen = []

    def predict_run(**kwargs):
        seen.append(kwargs["company"])
        inputs_take(kwargs["inputs"])  # as the real one does: nothing is left behind
        return {"ok": True, "inference_ms": 1.0,
                "results": [{"width": 40, "height": 30, "predictions": []}]}

    monkeypatch.setattr(worker, "predict_run", predict_run)
    registry.inference_worker_heartbeat(info={"name": "company@test"}, ttl_s=30)
    stop = threading.Event()
    lane = threading.Thread(target=worker.predict_lane_serve, args=(stop,),
                            kwargs={"poll_s": 0.1, "worker": "company@test"})
    lane.start()
    url = f"/api/v1/deployments/{deployment.id}/predict/"
    body = {"image": base64.b64encode(_png()).decode()}
    try:
        assert _bearer(key).post(url, body, format="json").status_code == 200
        with predict.predict_in_flight(deployment.id):  # another request of this web process
            assert _bearer(key).post(url, body, format="json").status_code == 200
            registry.inference_worker_heartbeat(info={"name": "second@test"}, ttl_s=30)
            assert _bearer(key).post(url, body, format="json").status_code == 200
            registry.inference_worker_forget(name="second@test")
        with predict.predict_in_flight(deployment.id + 1):  # another deployment's
            assert _bearer(key).post(url, body, format="json").status_code == 200
        assert _bearer(key).post(url, body, format="json").status_code == 200
    finally:
        stop.set()
        lane.join(timeout=10)
        registry.inference_worker_forget(name="company@test")
    assert seen == [False, True, False, False, False]
    assert not list(registry.redis_client().scan_iter(match=registry.redis_key("predict-*")))


def test_errors_cross_the_lane_in_the_api_shape():
    sent = ApplicationError("Image 1: not an image.", code="corrupt_image", status_code=400,
                            details={"image": 1})
    answer = json.loads(json.dumps(error_answer(sent)))  # as Redis carries it
    assert answer == {"ok": False, "status": 400, "error": {
        "code": "corrupt_image", "message": "Image 1: not an image.", "details": {"image": 1}}}
    received = answer_error(answer)
    assert (received.code, received.message, received.status_code, received.details) == (
        "corrupt_image", "Image 1: not an image.", 400, {"image": 1})
    # An answer of an older worker (status inside "error"), and one with no error at all.
    assert answer_error({"ok": False, "error": {"code": "inference_busy", "status": 503,
                                                "message": "busy"}}).status_code == 503
    unknown = answer_error({"ok": False})
    assert (unknown.code, unknown.status_code) == ("inference_failed", 500)
