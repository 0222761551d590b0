"""Liveness and readiness probes: what each checks, and that neither waits for workers
(their latency is measured in benchmarks/probes_latency.py, not asserted here)."""
import pytest

pytestmark = pytest.mark.django_db


def test_liveness_answers_without_touching_database_or_redis(api, settings, django_assert_num_queries):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    with django_assert_num_queries(0):
        response = api.get("/api/v1/health/live/")
    assert response.status_code == 200 and response.json() == {"ok": True}


def test_readiness_checks_database_and_redis_but_not_workers(api):
    # No Celery worker runs in this test: the full report fails on that, readiness does not.
    assert api.get("/api/v1/health/").status_code == 503
    response = api.get("/api/v1/health/ready/")
    body = response.json()
    assert response.status_code == 200, body
    assert set(body["checks"]) == {"database", "redis"}
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]


def test_readiness_fails_with_503_naming_redis_when_redis_is_down(api, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = api.get("/api/v1/health/ready/")
    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["redis"]["ok"] is False and "Connection" in body["checks"]["redis"]["error"]
    assert body["checks"]["database"]["ok"] is True


def test_probes_need_no_login_and_ignore_a_bad_token(api):
    api.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert api.get("/api/v1/health/live/").status_code == 200
    assert api.get("/api/v1/health/ready/").status_code == 200


def test_probes_and_metrics_are_not_redirected_to_https(api, settings):
    """Behind a TLS-terminating proxy (TESSERA_HTTPS), kubelet and Prometheus speak plain
    HTTP to the pod: their endpoints answer, everything else redirects."""
    settings.SECURE_SSL_REDIRECT = True
    assert api.get("/api/v1/health/live/").status_code == 200
    assert api.get("/api/v1/health/ready/").status_code == 200
    assert api.get("/metrics").status_code == 200
    assert api.get("/api/v1/projects/").status_code == 301
