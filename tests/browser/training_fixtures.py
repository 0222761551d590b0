"""Helpers for the training and deployment browser tests: seed a labelled synthetic
project through the public API (as the logged-in browser user), start runs through the
API, and wait for run states. Everything goes through HTTP, the way a script would."""
from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_util

from projects.synthetic import SYNTHETIC_CLASSES, make_dataset

# A tiny SegFormer that trains in seconds on one CPU thread (see NOTES.md).
TINY_CONFIG: dict[str, Any] = {
    "family": "segformer", "variant": "tiny", "resolution": [64, 64], "batch_size": 8,
    "lr": 3e-3, "schedule": "constant", "warmup_steps": 0, "pretrained": "none",
    "keep_best_metric": "miou", "checkpoint_every_n_steps": 0, "keep_last_k": 1,
    "augmentations": {"hflip": True},
}


def _csrf(pg) -> dict[str, str]:
    token = next((c["value"] for c in pg.context.cookies() if c["name"] == "csrftoken"), "")
    return {"X-CSRFToken": token, "Referer": pg.url or ""}


def api_post(pg, path: str, body: Any) -> dict:
    res = pg.request.post(f"/api/v1{path}", data=body, headers=_csrf(pg))
    assert res.ok, f"POST {path}: {res.status} {res.text()}"
    return res.json()


def api_get(pg, path: str) -> Any:
    res = pg.request.get(f"/api/v1{path}")
    assert res.ok, f"GET {path}: {res.status} {res.text()}"
    return res.json()


def _png(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return out.getvalue()


def seed_synthetic_project(pg, name: str, images: int = 16, size: int = 64, val_every: int = 4) -> dict:
    """Create a project with the synthetic classes and ``images`` labelled shapes (every
    ``val_every``-th in the val split), all through the API. Returns {"id", "classes",
    "assets", "val_assets"}."""
    project = api_post(pg, "/projects/", {"name": name, "type": "segmentation"})
    pid = project["id"]
    classes = [api_post(pg, f"/projects/{pid}/classes/", {"name": n, "color": c}) for n, c in SYNTHETIC_CLASSES]
    assets, val_assets = [], []
    headers = _csrf(pg)
    for i, sample in enumerate(make_dataset(images, seed=3, sizes=[(size, size)])):
        res = pg.request.post(f"/api/v1/projects/{pid}/assets/", headers=headers, multipart={
            "files": {"name": f"shape_{i:02d}.png", "mimeType": "image/png", "buffer": _png(sample.image)}})
        assert res.status == 201, res.text()
        asset = res.json()["created"][0]
        if val_every and i % val_every == val_every - 1:
            res = pg.request.patch(f"/api/v1/assets/{asset['id']}/", data={"split": "val"}, headers=headers)
            assert res.ok, res.text()
            val_assets.append(asset["id"])
        masks = []
        for inst in sample.instances:
            rle = mask_util.encode(np.asfortranarray(inst.mask.astype(np.uint8)))
            masks.append({"class_id": classes[inst.class_index]["id"],
                          "rle": {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}})
        res = pg.request.put(f"/api/v1/assets/{asset['id']}/masks/", data={"masks": masks}, headers=headers)
        assert res.ok, res.text()
        assets.append(asset["id"])
    return {"id": pid, "classes": classes, "assets": assets, "val_assets": val_assets}


def start_run_via_api(pg, project_id: int, name: str, **config: Any) -> dict:
    workflow = api_post(pg, f"/projects/{project_id}/workflows/",
                        {"name": name, "config": {**TINY_CONFIG, **config}, "val_fraction": 0.2})
    return api_post(pg, "/trainings/", {"workflow": workflow["id"]})


def wait_for_run(pg, run_id: int, statuses: tuple[str, ...], timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        run = api_get(pg, f"/trainings/{run_id}/")
        if run["status"] in statuses:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} is {run['status']} ({run['message']!r}, error {run['error']!r}), "
                                 f"not {statuses}, after {timeout_s} s")
        time.sleep(0.5)
