"""Web security through the API (issue 15, items 3, 7, 10): stored files served by their
sniffed type in a sandbox, the app's Content-Security-Policy, login throttling on the real
client address (and on the admin's form), expiring and revocable tokens, the HTTPS
settings, the websocket Origin check with ports, viewers and export builds, the pixel limit.

The same findings through a real browser and real processes: tests/test_faults.py."""
import asyncio
import io
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from deployments.models import ArtifactExport
from projects.models import Job
from tests import factories
from training.models import Artifact

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent
POLYGLOT = factories.png_bytes(16, 16) + b"<html><script>document.title='XSS'</script></html>"


def _upload(client, project, name: str, data: bytes):
    return client.post(f"/api/v1/projects/{project.id}/assets/",
                       {"files": [SimpleUploadedFile(name, data)]}, format="multipart")


def test_a_polyglot_named_html_is_served_as_its_sniffed_image_type_in_a_sandbox(client_for):
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    created = _upload(client, project, "x.html", POLYGLOT)
    assert created.status_code == 201, created.json()
    asset_id = created.json()["created"][0]["id"]

    response = client.get(f"/api/v1/assets/{asset_id}/file/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert "default-src 'none'" in response["Content-Security-Policy"]
    assert response["Content-Disposition"] == 'inline; filename="x.png"'
    assert b"".join(response.streaming_content) == POLYGLOT


def test_a_job_file_that_is_no_image_is_an_attachment(client_for, settings):
    from projects import services

    project = factories.project_create()
    owner = factories.owner_of(project)
    job = services.job_create(project=project, user=owner, kind="export")
    job.file.save("export.html", io.BytesIO(b"<script>alert(1)</script>"), save=True)
    response = client_for(owner).get(f"/api/v1/jobs/{job.id}/download/")
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in response["Content-Security-Policy"]
    Job.objects.filter(pk=job.pk).delete()


def test_every_answer_carries_the_content_security_policy(api):
    for path in ("/", "/projects/1", "/api/v1/auth/csrf/", "/api/v1/nowhere/"):
        policy = api.get(path)["Content-Security-Policy"]
        assert "script-src 'self' 'wasm-unsafe-eval'" in policy, path
        assert "worker-src 'self' blob:" in policy and "frame-ancestors 'none'" in policy
    assert "cdn.jsdelivr.net" in api.get("/api/v1/docs/")["Content-Security-Policy"]


def _login_attempts(client: APIClient, n: int, path="/api/v1/auth/token/", **extra) -> list[int]:
    codes = []
    for i in range(n):
        headers = {key: value.format(i=i) for key, value in extra.items()}
        codes.append(client.post(path, {"username": "nobody", "password": "x"}, format="json",
                                 **headers).status_code)
    return codes


def test_rotating_x_forwarded_for_does_not_dodge_the_login_throttle(settings):
    settings.TESSERA_LOGIN_RATE = "5/min"
    client = APIClient(REMOTE_ADDR="10.15.7.1")
    codes = _login_attempts(client, 7, HTTP_X_FORWARDED_FOR="203.0.113.{i}")
    assert codes == [400] * 5 + [429] * 2
    # Another client address (the socket's) has its own count.
    assert _login_attempts(APIClient(REMOTE_ADDR="10.15.7.2"), 1) == [400]


def test_behind_one_proxy_the_client_is_the_last_forwarded_address(settings):
    settings.TESSERA_LOGIN_RATE = "3/min"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = APIClient(REMOTE_ADDR="10.15.8.1")
    # The client forges a first hop; the proxy appends the address it saw (varying here).
    codes = _login_attempts(proxy, 4, HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.{i}")
    assert codes == [400] * 4
    same = _login_attempts(proxy, 4, HTTP_X_FORWARDED_FOR="{i}.2.2.2, 198.51.100.200")
    assert same == [400] * 3 + [429]


def test_the_admin_login_form_is_throttled(settings):
    settings.TESSERA_LOGIN_RATE = "3/min"
    client = APIClient(REMOTE_ADDR="10.15.9.1", enforce_csrf_checks=False)
    codes = [client.post("/admin/login/", {"username": "a", "password": "b"},
                         HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code for i in range(5)]
    assert codes == [200] * 3 + [429] * 2  # 200: the form again, with its error
    blocked = client.post("/admin/login/", {"username": "a", "password": "b"})
    assert int(blocked["Retry-After"]) >= 1
    assert client.get("/admin/login/").status_code == 200  # the form itself stays readable


def _token_for(api: APIClient, username: str, password: str = "pw-123456") -> dict:
    response = api.post("/api/v1/auth/token/", {"username": username, "password": password},
                        format="json", REMOTE_ADDR="10.15.10.1")
    assert response.status_code == 200, response.json()
    return response.json()


def test_tokens_expire_after_the_configured_days(api, settings):
    settings.TESSERA_TOKEN_TTL_DAYS = 30
    user = factories.user_create()
    body = _token_for(api, user.username)
    api.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert api.get("/api/v1/auth/me/").status_code == 200

    Token.objects.filter(key=body["token"]).update(created=timezone.now() - timedelta(days=31))
    expired = api.get("/api/v1/auth/me/")
    assert expired.status_code == 403  # DRF's answer when session auth comes first
    assert expired.json()["error"]["code"] == "token_expired"
    assert not Token.objects.filter(key=body["token"]).exists()

    fresh = _token_for(APIClient(), user.username)
    assert fresh["token"] != body["token"]
    expires = timezone.datetime.fromisoformat(fresh["expires_at"].replace("Z", "+00:00"))
    assert abs((expires - timezone.now()) - timedelta(days=30)) < timedelta(minutes=1)


def test_logout_revokes_the_token_and_owners_list_and_revoke_theirs(api):
    user, other = factories.user_create(), factories.user_create()
    token = _token_for(api, user.username)["token"]
    other_token = _token_for(APIClient(), other.username)["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    listed = api.get("/api/v1/auth/tokens/").json()
    assert [(t["prefix"], t["current"]) for t in listed] == [(token[:8], True)]
    assert token not in json.dumps(listed)  # only a prefix is ever shown
    assert api.delete(f"/api/v1/auth/tokens/{other_token[:8]}/").status_code == 404
    assert api.delete(f"/api/v1/auth/tokens/{token[:4]}/").status_code == 404  # too short

    assert api.post("/api/v1/auth/logout/").status_code == 204
    assert api.get("/api/v1/auth/me/").json()["error"]["code"] == "authentication_failed"
    assert not Token.objects.filter(key=token).exists()
    assert Token.objects.filter(key=other_token).exists()

    token = _token_for(api, user.username)["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.delete(f"/api/v1/auth/tokens/{token[:8]}/").status_code == 204
    assert api.get("/api/v1/auth/me/").json()["error"]["code"] == "authentication_failed"


def test_an_expired_token_opens_no_websocket():
    from config.asgi import application
    from training.models import TrainingRun

    project = factories.project_create()
    owner = factories.owner_of(project)
    run = TrainingRun.objects.create(project=project, config={})
    token = Token.objects.create(user=owner)
    Token.objects.filter(pk=token.pk).update(created=timezone.now() - timedelta(days=400))
    headers = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]
    assert _ws_connects(application, f"/ws/trainings/{run.id}/?token={token.key}", headers) is False


def _ws_connects(application, path: str, headers) -> bool:
    async def attempt():
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await communicator.connect(timeout=10)
        await communicator.disconnect()
        return connected

    return asyncio.run(attempt())


@pytest.mark.django_db(transaction=True)
def test_the_websocket_origin_must_match_host_and_port():
    from config.asgi import application
    from training.models import TrainingRun

    project = factories.project_create()
    run = TrainingRun.objects.create(project=project, config={})
    token = Token.objects.create(user=factories.owner_of(project)).key
    path = f"/ws/trainings/{run.id}/?token={token}"
    host = (b"host", b"localhost:8000")
    assert _ws_connects(application, path, [(b"origin", b"http://localhost:8000"), host])
    assert not _ws_connects(application, path, [(b"origin", b"http://localhost:9999"), host])
    assert not _ws_connects(application, path, [(b"origin", b"http://localhost"), host])
    assert not _ws_connects(application, path, [(b"origin", b"null"), host])
    assert not _ws_connects(application, path, [host])
    evil_host = [(b"origin", b"http://evil.example:8000"), (b"host", b"evil.example:8000")]
    assert not _ws_connects(application, path, evil_host)  # not an allowed host


def test_a_viewer_downloads_built_exports_but_starts_no_build(client_for):
    project = factories.project_create(viewer_v="viewer", annotator_a="annotator")
    artifact = Artifact.objects.create(project=project, name="a", family="segformer",
                                       variant="b0", storage_prefix="artifacts/none")
    viewer = project.memberships.get(role="viewer").user
    url = f"/api/v1/artifacts/{artifact.id}/export/?format=onnx"
    refused = client_for(viewer).get(url)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert not ArtifactExport.objects.exists() and not Job.objects.exists()

    ArtifactExport.objects.create(artifact=artifact, format="onnx",
                                  status=ArtifactExport.Status.FAILED, error="boom")
    failed = client_for(viewer).get(url)
    assert failed.status_code == 422  # what is there, answered
    assert client_for(viewer).get(url + "&rebuild=true").status_code == 403
    assert not Job.objects.exists()


def test_the_pixel_limit_is_the_configured_one_not_pillows(client_for, settings):
    """Pillow's own bomb threshold is 89.5 Mpx; the documented limit (100 Mpx) holds."""
    assert settings.TESSERA_MAX_IMAGE_PIXELS == 100_000_000
    project = factories.project_create()
    client = client_for(factories.owner_of(project))
    out = io.BytesIO()
    Image.new("1", (10_000, 9_500)).save(out, format="PNG")  # 95 Mpx, a few KB
    created = _upload(client, project, "big.png", out.getvalue())
    assert created.status_code == 201, created.json()
    assert created.json()["created"][0]["width"] == 10_000

    out = io.BytesIO()
    Image.new("1", (10_001, 10_000)).save(out, format="PNG")  # just over 100 Mpx
    refused = _upload(client, project, "bigger.png", out.getvalue())
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["code"] == "too_many_pixels"


def test_https_settings_follow_one_switch():
    code = ("from django.conf import settings as s; import json; print(json.dumps([s.SECURE_SSL_REDIRECT,"
            " s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE,"
            " getattr(s, 'SECURE_PROXY_SSL_HEADER', None)]))")

    def read(**env) -> list:
        out = subprocess.run([sys.executable, "-c", f"import django; django.setup(); {code}"],
                             cwd=ROOT, capture_output=True, text=True, check=True,
                             env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env})
        return json.loads(out.stdout.strip().splitlines()[-1])

    assert read() == [False, 0, False, False, None]
    assert read(TESSERA_HTTPS="true", TESSERA_NUM_PROXIES="1") == [
        True, 31_536_000, True, True, ["HTTP_X_FORWARDED_PROTO", "https"]]
    assert read(TESSERA_HTTPS="true", DJANGO_SECURE_HSTS_SECONDS="60")[1] == 60


def test_with_https_on_http_is_redirected_and_browsers_told_to_stay_on_https(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    client = APIClient()
    plain = client.get("/api/v1/auth/csrf/")
    assert plain.status_code == 301 and plain["Location"].startswith("https://")
    assert client.get("/api/v1/health/").status_code in (200, 503)  # probes stay on HTTP
    secure = client.get("/projects/", secure=True)
    assert secure["Strict-Transport-Security"] == "max-age=31536000"
    assert secure.cookies["csrftoken"]["secure"] is True
    assert secure["X-Frame-Options"] == "DENY"
