"""End to end in headless Chromium against a real node: train a tiny model through the API,
deploy its artifact from the run page, create an API key (shown once), run the page's curl
and Python snippets for real with that key, try an image in the try-it panel (overlay +
JSON equal to the API's answer), revoke the key and see the snippet refused."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

from projects.synthetic import make_dataset
from tests.browser.training_fixtures import seed_synthetic_project, start_run_via_api, wait_for_run


def _image(path) -> None:
    sample = make_dataset(1, seed=99, sizes=[(96, 80)])[0]
    Image.fromarray(sample.image).save(path)


def _run_snippet(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def test_deploy_and_call_a_model(page, login, shot, tessera, tmp_path):
    pg = page
    image_path = tmp_path / "try.png"
    _image(image_path)
    login(pg)
    project = seed_synthetic_project(pg, "E2E deploy shapes", images=12)
    pid = project["id"]
    run = start_run_via_api(pg, pid, "to deploy", steps=30, log_interval=5, eval_interval=15)
    run = wait_for_run(pg, run["id"], ("completed", "failed", "cancelled"), timeout_s=150)
    assert run["status"] == "completed", run["error"]
    artifact = run["artifact"]

    # -- deploy from the run page ------------------------------------------------------------
    pg.goto(f"/projects/{pid}/training/runs/{run['id']}")
    pg.get_by_role("link", name="Deploy this model").click()
    pg.wait_for_url(re.compile(rf".*/projects/{pid}/deployments\?artifact={artifact}$"))
    form = pg.locator("form[aria-label='Deploy a model']")
    form.locator("[name=artifact] option").first.wait_for(state="attached")
    assert form.locator("[name=artifact]").input_value() == str(artifact)
    form.locator("[name=runtime]").select_option("onnxruntime")
    shot(pg, "deploy-form")
    form.get_by_role("button", name="Deploy").click()
    pg.wait_for_url(re.compile(rf".*/projects/{pid}/deployments/\d+$"))
    deployment_id = int(pg.url.rsplit("/", 1)[1])
    pg.locator(".deployment[data-status=ready]").wait_for(timeout=120_000)
    shot(pg, "deployment-ready")

    # -- a key, shown once ------------------------------------------------------------------------
    pg.get_by_label("Key name").fill("e2e key")
    pg.get_by_role("button", name="Create key").click()
    key = pg.get_by_test_id("new-api-key").inner_text().strip()
    assert re.fullmatch(r"tsk_[0-9a-f]{8}_\S+", key), key
    row = pg.locator(f"[data-testid=key-row][data-key-prefix='{key.split('_')[1]}']")
    row.wait_for()
    assert key not in row.inner_text()  # the list never shows the secret
    listed = pg.request.get(f"/api/v1/deployments/{deployment_id}/keys/").json()
    assert all("key" not in k for k in listed)

    # -- the snippets work as printed (with the key filled in) ------------------------------------
    curl = pg.get_by_test_id("snippet-curl").inner_text()
    assert key in curl
    curl = curl.replace("image=@image.png", f"image=@{image_path}")
    if shutil.which("curl"):
        out = _run_snippet(["bash", "-c", curl + " -w '\\n%{http_code}'"])
        body, code = out.stdout.rsplit("\n", 1)
        assert code == "200", out.stdout + out.stderr
        via_curl = json.loads(body)
        assert (via_curl["width"], via_curl["height"]) == (96, 80)
    python = pg.get_by_test_id("snippet-python").inner_text().replace('"image.png"', json.dumps(str(image_path)))
    out = _run_snippet([sys.executable, "-c", python], timeout=90)
    assert out.returncode == 0, out.stderr
    assert "server ms:" in out.stdout

    # -- try it in the page: overlay and the JSON answer --------------------------------------------
    pg.get_by_test_id("try-input").set_input_files(str(image_path))
    pg.get_by_test_id("try-json").wait_for(timeout=60_000)
    shown = json.loads(pg.get_by_test_id("try-json").inner_text())
    with open(image_path, "rb") as fh:
        direct = pg.request.post(f"/api/v1/deployments/{deployment_id}/predict/", multipart={
            "image": {"name": "try.png", "mimeType": "image/png", "buffer": fh.read()}},
            headers={"Authorization": f"Bearer {key}"}).json()
    assert (shown["width"], shown["height"]) == (96, 80)
    strip = lambda r: [(p["label"], p["class_name"], p["rle"]["counts"], p["area"]) for p in r["predictions"]]  # noqa: E731
    assert strip(shown) == strip(direct)
    canvas = pg.get_by_test_id("try-overlay").locator("canvas")
    assert (canvas.evaluate("c => [c.width, c.height]")) == [96, 80]
    # every predicted pixel is painted on the overlay, nothing else
    alpha = np.array(canvas.evaluate(
        "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data.filter((_, i) => i % 4 === 3))"))
    assert int((alpha > 0).sum()) == sum(p["area"] for p in shown["predictions"])
    shot(pg, "try-it")

    # -- revoke: the same snippet is refused ---------------------------------------------------------
    row.get_by_role("button", name="Revoke").click()
    pg.locator(f"[data-testid=key-row][data-key-prefix='{key.split('_')[1]}'][data-revoked=true]").wait_for()
    refused = pg.request.post(f"/api/v1/deployments/{deployment_id}/predict/", multipart={
        "image": {"name": "try.png", "mimeType": "image/png", "buffer": image_path.read_bytes()}},
        headers={"Authorization": f"Bearer {key}"})
    assert refused.status in (401, 403), refused.text()
    shot(pg, "key-revoked")
    assert not pg.console_errors, pg.console_errors  # type: ignore[attr-defined]

