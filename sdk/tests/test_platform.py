"""Every SDK call and CLI command against a real running Tessera (web + Celery worker):
upload (parallel, resumable), classes, label import, masks, exports, a training watched
live over the websocket, deploy, predict (masks equal to the API's), API keys, and the
errors (bad token, 404, validation, 409, 429 with backoff)."""
from __future__ import annotations

import base64
import io
import json
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import CLASSES, cli_runner, coco_for, make_samples, write_samples
from PIL import Image

from tessera import (
    AuthenticationError,
    Client,
    Conflict,
    NotFound,
    OperationFailed,
    RateLimited,
    ValidationError,
)
from tessera.cli import EXIT_CODES

# A tiny SegFormer that trains in seconds on one CPU thread (as the server's own tests use).
TINY_CONFIG = {
    "family": "segformer", "variant": "tiny", "resolution": [64, 64], "batch_size": 8,
    "lr": 3e-3, "schedule": "constant", "warmup_steps": 0, "pretrained": "none",
    "keep_best_metric": "miou", "checkpoint_every_n_steps": 0, "keep_last_k": 1,
    "augmentations": {"hflip": True}, "steps": 24, "log_interval": 4, "eval_interval": 12,
}


def _json(proc) -> object:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout)


def _token_env(client: Client) -> dict[str, str]:
    return {"TESSERA_URL": client.url, "TESSERA_TOKEN": client.token}


# --- a labelled project, built once through the SDK ------------------------------------------
@pytest.fixture(scope="module")
def samples():
    return make_samples(16, seed=1)


@pytest.fixture(scope="module")
def project(client: Client, samples, tmp_path_factory):
    project = client.projects.create("sdk shapes", description="made by the SDK tests")
    classes = {name: client.classes.create(project, name, color=color) for name, color in CLASSES}
    folder = write_samples(tmp_path_factory.mktemp("shapes"), samples)
    report = client.assets.upload_folder(project, folder, workers=3)
    assert len(report.created) == len(samples) and not report.errors
    job = client.imports.run(project, json.dumps(coco_for(samples)).encode(), format="coco",
                             name="labels.json")
    assert job.status == "succeeded", job
    assets = {a.name: a for a in client.assets.list(project)}
    for name in sorted(assets)[::4]:
        client.assets.update(assets[name], split="val")
    return {"project": project, "classes": classes, "assets": assets, "folder": folder}


def test_projects_classes_and_assets(client, project, samples):
    p = project["project"]
    got = client.projects.get(p.id)
    assert (got.name, got.role, got.asset_count) == ("sdk shapes", "owner", len(samples))
    assert p.id in [x.id for x in client.projects.list()]
    assert client.projects.update(p, description="renamed").description == "renamed"
    listed = client.classes.list(p)
    assert [(c.name, c.color, c.index) for c in listed] == [(n, c, i) for i, (n, c) in enumerate(CLASSES)]
    val = client.assets.list(p, split="val")
    assert len(val) == 4 and all(a.split == "val" for a in val)
    by_name = {s.name: s for s in samples}
    png = next(a for a in project["assets"].values() if a.name.endswith(".png"))
    assert client.assets.get(png.id).sha256 == png.sha256
    assert client.assets.download(png) == by_name[png.name].data  # stored as sent
    sizes = {(a.width, a.height) for a in project["assets"].values()}
    assert len(sizes) > 4  # mixed sizes went through


def test_imported_masks_are_the_drawn_shapes_and_masks_round_trip(client, project, samples):
    classes = project["classes"]
    for sample in samples:
        asset = project["assets"][sample.name]
        arrays = client.masks.get(asset).arrays()
        for name, mask in sample.masks.items():
            assert (arrays[classes[name].id] == mask).all(), (sample.name, name)

    asset = project["assets"][samples[0].name]
    current = client.masks.get(asset)
    moved = {cid: np.roll(m, 1, axis=1) for cid, m in current.arrays().items()}
    updated = client.masks.set(asset, moved, base_revision=current.revision)
    assert updated.revision == current.revision + 1
    assert all((updated.arrays()[cid] == m).all() for cid, m in moved.items())
    with pytest.raises(Conflict) as info:  # editing a revision that is no longer current
        client.masks.set(asset, moved, base_revision=current.revision)
    assert info.value.status == 409
    client.masks.set(asset, current.arrays())  # back to the drawn shapes for training


def test_exports_stream_and_background_job(client, project, samples, tmp_path, cli):
    p = project["project"]
    png_zip = client.exports.download(p, tmp_path / "png.zip", format="png")
    names = zipfile.ZipFile(png_zip).namelist()
    assert sum(n.startswith("masks/") for n in names) == len(samples)  # one index PNG each
    assert sum(n.startswith("images/") for n in names) == len(samples)

    coco_zip = client.exports.download(p, tmp_path / "coco.zip", format="coco", background=True)
    docs = [json.loads(zipfile.ZipFile(coco_zip).read(n)) for n in zipfile.ZipFile(coco_zip).namelist()
            if n.endswith(".json")]
    assert sum(len(d["images"]) for d in docs) == len(samples)

    out = tmp_path / "labelme.zip"
    body = _json(cli("export", "-p", str(p.id), "--format", "labelme", "-o", str(out), "--json",
                     env=_token_env(client)))
    assert body["path"] == str(out) and zipfile.is_zipfile(out)


# --- training: one run watched by the SDK, one by the CLI -------------------------------------
@pytest.fixture(scope="module")
def workflow(client, project):
    return client.workflows.create(project["project"], "tiny", TINY_CONFIG, val_fraction=0.2)


@pytest.fixture(scope="module")
def watched_run(client, workflow):
    run = client.trainings.start(workflow)
    events = list(client.trainings.watch(run, timeout=600))
    return client.trainings.get(run), events


def test_watch_yields_live_metrics_until_the_run_ends(client, workflow, watched_run):
    run, events = watched_run
    assert run.status == "completed" and run.artifact, run
    assert events[0].kind == "status" and events[0].status not in ("completed", "failed", "cancelled")
    metric_steps = [e.step for e in events if e.kind == "metric"]
    assert len(metric_steps) >= 3 and metric_steps == sorted(set(metric_steps))
    assert all("loss" in e.values for e in events if e.kind == "metric")
    evals = [e for e in events if e.kind == "eval"]
    assert evals and all(isinstance(e.values.get("miou"), float) for e in evals)
    assert events[-1].kind == "status" and events[-1].status == "completed"
    # the same points over HTTP
    points = client.trainings.metrics(run, kind="train")
    assert [p.step for p in points] == metric_steps
    assert [w.id for w in client.workflows.list(run.project)] == [workflow.id]
    assert client.workflows.get(workflow.id).config["steps"] == 24
    assert any(m.get("family") == "segformer" for m in client.workflows.models())


def test_cli_train_watch_streams_loss_and_miou(client, project, workflow, watched_run, cli):
    p = project["project"]
    env = _token_env(client)
    proc = cli("train", "-p", str(p.id), "--workflow", "tiny", "--watch", env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("step ") and " loss " in line for line in lines), proc.stdout
    assert any("eval mIoU" in line for line in lines), proc.stdout
    assert any(line.startswith("status completed") for line in lines) and lines[-1].startswith("Run ") and "completed" in lines[-1]

    runs = _json(cli("runs", "ls", "-p", str(p.id), "--json", env=env))
    assert len(runs) == 2 and {r["status"] for r in runs} == {"completed"}
    listed = client.trainings.list(project=p, status="completed")
    assert {r.id for r in listed} == {r["id"] for r in runs}


def test_cancelled_run_ends_the_json_watch_with_exit_code_failed(client, project, cli):
    p = project["project"]
    long = client.workflows.create(p, "long", {**TINY_CONFIG, "steps": 20000, "eval_interval": 20000})
    proc = cli.popen("train", "-p", str(p.id), "--workflow", str(long.id), "--watch", "--json",
                     env=_token_env(client))
    events = []
    for line in proc.stdout:  # one JSON object per event, live
        events.append(json.loads(line))
        if events[-1]["event"] == "metric":
            break
    (run,) = [r for r in client.trainings.list(project=p) if r.workflow == long.id]
    assert client.trainings.cancel(run).cancel_requested
    rest, _ = proc.communicate(timeout=300)
    lines = [json.loads(line) for line in rest.splitlines()]
    assert proc.returncode == EXIT_CODES["failed"]
    assert lines[-2] == {**lines[-2], "event": "status", "status": "cancelled"}
    assert lines[-1]["id"] == run.id and lines[-1]["status"] == "cancelled"
    assert events[0]["event"] == "status" and "loss" in events[-1]["values"]
    with pytest.raises(OperationFailed) as info:
        client.trainings.wait(run)
    assert info.value.code == "training_cancelled"


# --- deploy and predict ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def deployed(client, watched_run, tmp_path_factory):
    run, _ = watched_run
    cli = cli_runner(tmp_path_factory.mktemp("cli") / "config.json")
    body = _json(cli("deploy", str(run.artifact), "--key", "pipeline", "--json", env=_token_env(client)))
    assert body["deployment"]["status"] == "ready"
    assert body["api_key"]["key"]
    return client.deployments.get(body["deployment"]["id"]), body["api_key"]


def test_artifacts_and_deployments(client, project, watched_run, deployed, cli, tmp_path):
    run, _ = watched_run
    deployment, key = deployed
    artifact = client.artifacts.get(run.artifact)
    assert (artifact.run, artifact.family) == (run.id, "segformer")
    listed = _json(cli("artifacts", "ls", "-p", str(project["project"].id), "--json", env=_token_env(client)))
    assert run.artifact in [a["id"] for a in listed]
    assert deployment.id in [d.id for d in client.deployments.list(project=project["project"])]
    assert [k.name for k in client.api_keys.list(deployment)] == ["pipeline"]
    onnx = client.artifacts.export(artifact, tmp_path / "model.onnx", format="onnx")
    assert onnx.stat().st_size > 10_000


def test_predictions_equal_the_apis_class_map(client, project, samples, deployed):
    deployment, key = deployed
    path = project["folder"] / samples[1].name
    as_key = Client(client.url, token=None)
    prediction = as_key.predict(deployment, path, api_key=key["key"], png=True)
    api_map = np.asarray(Image.open(io.BytesIO(base64.b64decode(prediction.raw["png"]))))
    assert prediction.class_map().shape == (prediction.height, prediction.width)
    assert (prediction.class_map() == api_map).all()
    masks = prediction.masks()
    for p in prediction.predictions:
        assert masks[p.class_name].sum() == p.area
    assert any(p.area for p in prediction.predictions)

    # several images at once, as files, bytes and arrays; the token of a member works too
    array = np.asarray(Image.open(path).convert("RGB"))
    many = client.predict(deployment, [path, path.read_bytes(), array])
    assert len(many) == 3
    assert all((m.class_map() == api_map).all() for m in many)


def test_cli_predict_writes_png_masks_and_json(client, project, samples, deployed, cli, tmp_path):
    deployment, key = deployed
    images = [str(project["folder"] / s.name) for s in samples[:3]]
    env = {"TESSERA_URL": client.url, "TESSERA_TOKEN": "unused-with-a-key"}
    args = ["predict", "-d", str(deployment.id), *images, "--api-key", key["key"], "-o"]
    written = _json(cli(*args, str(tmp_path / "png"), "--json", env=env))
    expected = [client.predict(deployment, img) for img in images]
    for item, prediction in zip(written, expected, strict=True):
        png = np.asarray(Image.open(item["files"][0]))
        assert (png == prediction.class_map()).all()
    _json(cli(*args, str(tmp_path / "masks"), "--format", "masks", "--json", env=env))
    for img, prediction in zip(images, expected, strict=True):
        for p in prediction.predictions:
            mask = np.asarray(Image.open(tmp_path / "masks" / f"{Path(img).stem}_{p.class_name}.png"))
            assert ((mask == 255) == p.array()).all()
    _json(cli(*args, str(tmp_path / "json"), "--format", "json", "--json", env=env))
    first = json.loads((tmp_path / "json" / f"{Path(images[0]).stem}.json").read_text())
    assert [x["rle"] for x in first["predictions"]] == [p.rle for p in expected[0].predictions]


def test_429_is_retried_after_retry_after_and_revoked_keys_are_refused(client, project, samples, deployed):
    deployment, _ = deployed
    key = client.api_keys.create(deployment, name="slow", rate="1/s")
    path = project["folder"] / samples[0].name
    retries = []
    patient = Client(client.url, token=None, on_retry=retries.append)
    for _ in range(3):
        patient.predict(deployment, path, api_key=key.key)
    throttled = [r for r in retries if r.status == 429]
    assert throttled and all(r.retry_after is not None and r.wait_s == r.retry_after for r in throttled)

    impatient = Client(client.url, token=None, max_retries=0)
    with pytest.raises(RateLimited) as info:
        for _ in range(3):
            impatient.predict(deployment, path, api_key=key.key)
    assert info.value.code == "throttled" and info.value.retry_after is not None

    client.api_keys.revoke(deployment, key)
    assert [k.revoked for k in client.api_keys.list(deployment) if k.id == key.id] == [True]
    with pytest.raises(AuthenticationError) as info:
        impatient.predict(deployment, path, api_key=key.key)
    assert info.value.status == 401


# --- CLI basics, upload resume, errors ------------------------------------------------------
def test_cli_login_writes_a_private_config_that_later_commands_use(node, cli):
    body = _json(cli("login", "--url", node.url, "--username", node.username, "--password",
                     node.password, "--json"))
    assert body["user"]["username"] == node.username
    assert stat.S_IMODE(cli.config.stat().st_mode) == 0o600
    assert json.loads(cli.config.read_text())["url"] == node.url
    created = _json(cli("projects", "create", "from the cli", "--json"))
    listed = _json(cli("projects", "ls", "--json"))
    assert created["id"] in [p["id"] for p in listed]
    classes = _json(cli("classes", "create", "-p", str(created["id"]), "road", "sky", "--json"))
    assert [c["name"] for c in classes] == ["road", "sky"]
    human = cli("classes", "ls", "-p", str(created["id"]))
    assert human.returncode == 0 and "road" in human.stdout and "NAME" in human.stdout


def test_client_reads_url_and_token_from_the_environment(client, monkeypatch):
    monkeypatch.setenv("TESSERA_URL", client.url)
    monkeypatch.setenv("TESSERA_TOKEN", client.token)
    monkeypatch.setenv("TESSERA_CONFIG", "/nonexistent/config.json")
    assert Client().me()["username"] == client.me()["username"]


def test_cli_upload_resumes_by_hash_and_reports_refused_files(client, cli, tmp_path):
    project = client.projects.create("resume")
    samples = make_samples(8, seed=5, prefix="resume")
    folder = write_samples(tmp_path / "batch", samples)
    (folder / "nested").mkdir()
    (folder / "nested" / "deep.png").write_bytes(make_samples(1, seed=9, prefix="deep")[0].data)
    (folder / "notes.txt").write_text("not an image")
    # an earlier run that stopped after three files
    first = client.assets.upload(project, [folder / s.name for s in samples[:3]])
    assert len(first.created) == 3

    env = _token_env(client)
    proc = cli("upload", str(folder), "-p", str(project.id), "--workers", "2", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "6/6 files" in proc.stderr  # the progress bar counts what is sent
    assert proc.stdout.startswith("6 uploaded, 3 already there (skipped)")

    again = _json(cli("upload", str(folder), "-p", str(project.id), "--json", env=env))
    assert (len(again["created"]), len(again["skipped"])) == (0, 9)
    assert len(client.assets.list(project)) == 9

    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    bad = cli("upload", str(folder), "-p", str(project.id), "--json", env=env)
    assert bad.returncode == EXIT_CODES["partial"]
    report = json.loads(bad.stdout)
    assert [e["file"] for e in report["errors"]] == ["broken.png"] and report["errors"][0]["code"]

    asset = client.assets.list(project, search="deep")[0]
    client.assets.delete(asset)
    with pytest.raises(NotFound):
        client.assets.get(asset)
    client.projects.delete(project)
    with pytest.raises(NotFound):
        client.projects.get(project)


def test_cli_import_from_a_file(client, cli, tmp_path):
    project = client.projects.create("import")
    samples = make_samples(3, seed=7, prefix="imp")
    client.assets.upload(project, [write_samples(tmp_path / "imgs", samples) / s.name for s in samples])
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(coco_for(samples)))
    job = _json(cli("import", str(labels), "-p", str(project.id), "--format", "coco", "--json",
                    env=_token_env(client)))
    assert job["status"] == "succeeded"
    assert {c.name for c in client.classes.list(project)} == {n for n, _ in CLASSES}
    assert all(client.masks.get(a).masks for a in client.assets.list(project))

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    failed = cli("import", str(bad), "-p", str(project.id), "--format", "coco", "--json",
                 env=_token_env(client))
    assert failed.returncode in (EXIT_CODES["failed"], EXIT_CODES["invalid"]), failed.stdout
    assert json.loads(failed.stdout)["error"]["code"]


def test_errors_carry_the_api_code_and_map_to_exit_codes(client, node, cli):
    with pytest.raises(AuthenticationError) as info:
        Client(node.url, "not-a-token").projects.list()
    # 403, not 401: DRF's answer when SessionAuthentication is the first authentication class
    assert info.value.status in (401, 403) and info.value.code == "authentication_failed"
    bad = cli("projects", "ls", "--json", env={"TESSERA_URL": node.url, "TESSERA_TOKEN": "nope"})
    assert bad.returncode == EXIT_CODES["auth"]
    assert json.loads(bad.stdout)["error"]["code"] == "authentication_failed"

    with pytest.raises(NotFound) as info:
        client.projects.get(987654321)
    assert info.value.code == "not_found"
    with pytest.raises(NotFound):  # the websocket refuses; the reason comes from the API
        next(client.trainings.watch(987654321))
    with pytest.raises(AuthenticationError):
        next(Client(node.url, "not-a-token").trainings.watch(987654321))
    missing = cli("classes", "ls", "-p", "987654321", env=_token_env(client))
    assert missing.returncode == EXIT_CODES["not_found"] and "not_found" in missing.stderr

    with pytest.raises(ValidationError) as info:
        client.projects.create("")
    assert info.value.code == "validation_error" and "name" in info.value.details

    nothing = cli("projects", "ls")  # no URL anywhere
    assert nothing.returncode == EXIT_CODES["auth"] and "tessera login" in nothing.stderr
    assert cli("projects").returncode == EXIT_CODES["usage"]


def test_health_and_deleting_deployments_workflows_classes_and_artifacts(client, project, deployed,
                                                                         watched_run):
    assert client.health()["ok"] is True
    p = project["project"]
    deployment, _ = deployed
    client.deployments.delete(deployment)
    with pytest.raises(NotFound):
        client.deployments.get(deployment)
    run, _ = watched_run
    client.artifacts.delete(run.artifact)
    with pytest.raises(NotFound):
        client.artifacts.get(run.artifact)
    temp = client.workflows.create(p, "temp", TINY_CONFIG)
    client.workflows.delete(temp)
    with pytest.raises(NotFound):
        client.workflows.get(temp)
    extra = client.classes.create(p, "temp")
    assert client.classes.update(p, extra, name="renamed").name == "renamed"
    client.classes.delete(p, extra)
    assert "renamed" not in [c.name for c in client.classes.list(p)]
