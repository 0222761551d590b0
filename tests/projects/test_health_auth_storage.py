"""Health report, token/session auth, and the S3 storage path against a local
S3-compatible endpoint (moto's server speaking the S3 protocol over HTTP)."""
import boto3
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from moto.server import ThreadedMotoServer

from config.embedded import free_port
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)
def test_health_is_ok_with_a_worker_on_every_queue(api, celery_worker_process):
    body = api.get("/api/v1/health/").json()
    assert body["ok"] is True, body
    assert set(body["checks"]) == {"database", "redis", "workers", "storage"}
    assert all(body["checks"]["workers"]["queues"][q] for q in ("default", "gpu", "inference"))


def test_health_names_the_broken_part(api, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = api.get("/api/v1/health/")
    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["redis"]["ok"] is False and "Connection" in body["checks"]["redis"]["error"]
    assert body["checks"]["database"]["ok"] is True


def test_token_auth_for_scripts(api):
    factories.user_create("alice", password="s3cret-pass")
    bad = api.post("/api/v1/auth/token/", {"username": "alice", "password": "nope"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_credentials"

    token = api.post("/api/v1/auth/token/", {"username": "alice", "password": "s3cret-pass"},
                     format="json").json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    created = api.post("/api/v1/projects/", {"name": "Roads"}, format="json")
    assert created.status_code == 201 and created.json()["role"] == "owner"
    assert [p["name"] for p in api.get("/api/v1/projects/").json()["results"]] == ["Roads"]


def test_session_login_enforces_csrf():
    from rest_framework.test import APIClient

    factories.user_create("bob", password="s3cret-pass")
    client = APIClient(enforce_csrf_checks=True)
    csrf = client.get("/api/v1/auth/csrf/").json()["csrfToken"]
    login = client.post("/api/v1/auth/login/", {"username": "bob", "password": "s3cret-pass"},
                        format="json", HTTP_X_CSRFTOKEN=csrf)
    assert login.status_code == 200 and login.json()["username"] == "bob"
    assert client.get("/api/v1/auth/me/").json()["username"] == "bob"
    no_token = client.post("/api/v1/projects/", {"name": "x"}, format="json")
    assert no_token.status_code == 403
    csrf = client.cookies["csrftoken"].value
    ok = client.post("/api/v1/projects/", {"name": "x"}, format="json", HTTP_X_CSRFTOKEN=csrf)
    assert ok.status_code == 201


def test_roles_annotator_uploads_viewer_reads(client_for):
    from projects.models import Membership, Role

    project = factories.project_create(ann=Role.ANNOTATOR, view=Role.VIEWER)
    annotator = client_for(Membership.objects.get(project=project, role=Role.ANNOTATOR).user)
    viewer = client_for(Membership.objects.get(project=project, role=Role.VIEWER).user)
    upload = {"files": [SimpleUploadedFile("a.png", factories.png_bytes(seed=11))]}

    assert viewer.post(f"/api/v1/projects/{project.id}/assets/", upload, format="multipart").status_code == 403
    upload = {"files": [SimpleUploadedFile("a.png", factories.png_bytes(seed=11))]}
    assert annotator.post(f"/api/v1/projects/{project.id}/assets/", upload, format="multipart").status_code == 201
    assert annotator.post(f"/api/v1/projects/{project.id}/classes/", {"name": "car"}).status_code == 403
    assert viewer.get(f"/api/v1/projects/{project.id}/assets/").json()["count"] == 1


def test_classes_get_indices_and_validated_colours(client_for):
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    url = f"/api/v1/projects/{project.id}/classes/"
    car = client.post(url, {"name": "car", "color": "#FF0000"}, format="json").json()
    road = client.post(url, {"name": "road"}, format="json").json()
    assert (car["index"], car["color"], road["index"]) == (0, "#ff0000", 1)
    assert road["color"].startswith("#") and len(road["color"]) == 7
    dup = client.post(url, {"name": "Car"}, format="json")
    assert dup.status_code == 400 and dup.json()["error"]["code"] == "duplicate"
    bad = client.post(url, {"name": "sky", "color": "red"}, format="json")
    assert bad.status_code == 400 and "color" in bad.json()["error"]["details"]


@pytest.fixture
def s3_endpoint():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    s3.create_bucket(Bucket="tessera-test")
    yield endpoint, s3
    server.stop()


def test_s3_storage_holds_uploaded_assets(client_for, settings, s3_endpoint):
    endpoint, s3 = s3_endpoint
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
            "bucket_name": "tessera-test", "endpoint_url": endpoint, "region_name": "us-east-1",
            "access_key": "test", "secret_key": "test", "file_overwrite": False}},
    }
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    data = factories.png_bytes(50, 40, seed=21)

    body = client.post(f"/api/v1/projects/{project.id}/assets/",
                       {"files": [SimpleUploadedFile("s3.png", data)]}, format="multipart").json()

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="tessera-test").get("Contents", [])]
    assert len(keys) == 1 and keys[0].startswith("assets/") and keys[0].endswith(".png")
    assert s3.get_object(Bucket="tessera-test", Key=keys[0])["Body"].read() == data
    served = client.get(f"/api/v1/assets/{body['created'][0]['id']}/file/")
    assert b"".join(served.streaming_content) == data
    from common.health import check_storage

    assert check_storage()["backend"] == "S3Storage"
