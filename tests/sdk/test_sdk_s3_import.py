"""`tessera import s3://bucket/key`: the command reads the labels from an S3-compatible
store (moto's server over HTTP, found through the standard AWS_* variables) and imports
them into a real node (web + worker)."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import numpy as np
import pytest
from moto.server import ThreadedMotoServer
from PIL import Image

from config.embedded import free_port
from tests.browser.server import PASSWORD, USERNAME, start_server
from tests.sdk.serve import SDK_TEST_ENV

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "sdk"))  # the SDK, also when .venv has no editable install

from tessera import Client, rle_encode  # noqa: E402

pytestmark = pytest.mark.worker


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("sdk-s3-node"), extra_env=SDK_TEST_ENV)
    yield server
    server.stop()


@pytest.fixture
def s3_env():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    yield env
    server.stop()


def _tessera(*args: str, env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TESSERA_", "AWS_"))}
    clean["PYTHONPATH"] = str(ROOT / "sdk")
    return subprocess.run([sys.executable, "-m", "tessera", *args], env={**clean, **env},
                          capture_output=True, text=True, timeout=300)


def test_cli_imports_coco_labels_from_s3(node, s3_env, tmp_path):
    client = Client.login(node.url, USERNAME, PASSWORD)
    project = client.projects.create("from s3")
    square = np.zeros((40, 50), bool)
    square[10:30, 5:25] = True
    image = np.full((40, 50, 3), 90, np.uint8)
    image[square] = (200, 30, 30)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    (tmp_path / "one.png").write_bytes(buf.getvalue())
    client.assets.upload(project, [tmp_path / "one.png"])
    coco = {"images": [{"id": 1, "file_name": "one.png", "width": 50, "height": 40}],
            "categories": [{"id": 1, "name": "box"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                             "segmentation": rle_encode(square), "area": int(square.sum())}]}
    s3 = boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    s3.create_bucket(Bucket="labels")
    s3.put_object(Bucket="labels", Key="run-1/coco.json", Body=json.dumps(coco).encode())

    env = {**s3_env, "TESSERA_URL": node.url, "TESSERA_TOKEN": client.token}
    proc = _tessera("import", "s3://labels/run-1/coco.json", "-p", str(project.id), "--format",
                    "coco", "--json", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["status"] == "succeeded"
    asset = client.assets.list(project)[0]
    (box,) = client.classes.list(project)
    assert (client.masks.get(asset).arrays()[box.id] == square).all()

    missing = _tessera("import", "s3://labels/nope.json", "-p", str(project.id), "--format",
                       "coco", "--json", env=env)
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["error"]["code"] == "s3_error"
