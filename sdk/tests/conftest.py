"""Fixtures of the SDK's tests. They need only the client (and pytest + pillow) in the
virtualenv that runs them: the Tessera node they talk to is started by the *server's*
Python (``$TESSERA_SERVER_PYTHON``, default ``<repo>/.venv/bin/python``) as
``-m tests.sdk.serve``, a real node with its web process and a Celery worker.
Or point them at a running node: ``TESSERA_TEST_URL``, ``TESSERA_TEST_USERNAME``,
``TESSERA_TEST_PASSWORD``."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tessera import Client

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Node:
    url: str
    username: str
    password: str


@pytest.fixture(scope="session")
def node() -> Iterator[Node]:
    if os.environ.get("TESSERA_TEST_URL"):
        yield Node(os.environ["TESSERA_TEST_URL"], os.environ["TESSERA_TEST_USERNAME"],
                   os.environ["TESSERA_TEST_PASSWORD"])
        return
    python = os.environ.get("TESSERA_SERVER_PYTHON") or str(REPO / ".venv" / "bin" / "python")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([python, "-m", "tests.sdk.serve"], cwd=REPO, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    info = None
    for line in proc.stdout:  # manage.py may print before the JSON line
        if line.startswith("{"):
            info = json.loads(line)
            break
    if info is None:
        proc.wait(timeout=30)
        raise RuntimeError(f"the Tessera node did not start (exit {proc.returncode})")
    try:
        yield Node(info["url"], info["username"], info["password"])
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture(scope="session")
def client(node: Node) -> Client:
    return Client.login(node.url, node.username, node.password, backoff=0.2)


# --- a synthetic dataset with known masks: discs and squares on grey -------------------
CLASSES = [("disc", "#e6194b"), ("square", "#3cb44b")]
SIZES = [(48, 64), (64, 64), (56, 40), (72, 56), (64, 48), (40, 40), (64, 80), (60, 60)]


@dataclass
class Sample:
    name: str
    data: bytes
    masks: dict[str, np.ndarray]  # class name -> (H, W) bool


def make_samples(count: int, *, seed: int = 0, prefix: str = "img") -> list[Sample]:
    """Mixed sizes and formats: PNGs, and every 4th image a JPEG (its labels are the
    drawn shapes)."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(count):
        h, w = SIZES[i % len(SIZES)]
        image = np.full((h, w, 3), 128, np.uint8)
        image += rng.integers(0, 8, image.shape, dtype=np.uint8)
        yy, xx = np.mgrid[:h, :w]
        r = int(rng.integers(6, min(h, w) // 4 + 1))
        cy, cx = int(rng.integers(r, h // 2)), int(rng.integers(r, w - r))
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        s = int(rng.integers(6, min(h, w) // 3))
        sy, sx = int(rng.integers(h // 2, h - s)), int(rng.integers(0, w - s))
        square = np.zeros((h, w), bool)
        square[sy:sy + s, sx:sx + s] = True
        square &= ~disc
        image[disc] = (220, 30, 30)
        image[square] = (30, 40, 200)
        fmt = "JPEG" if i % 4 == 3 else "PNG"
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format=fmt, quality=95)
        ext = ".jpg" if fmt == "JPEG" else ".png"
        samples.append(Sample(f"{prefix}_{i:03d}{ext}", buf.getvalue(), {"disc": disc, "square": square}))
    return samples


def write_samples(folder: Path, samples: list[Sample]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for s in samples:
        (folder / s.name).write_bytes(s.data)
    return folder


def coco_for(samples: list[Sample]) -> dict:
    """A COCO file labelling the samples by file name, masks as compressed RLE."""
    from tessera import rle_encode

    categories = [{"id": i + 1, "name": n, "color": c} for i, (n, c) in enumerate(CLASSES)]
    cat_id = {c["name"]: c["id"] for c in categories}
    images, annotations = [], []
    for i, s in enumerate(samples):
        h, w = next(iter(s.masks.values())).shape
        images.append({"id": i + 1, "file_name": s.name, "width": w, "height": h})
        for name, mask in s.masks.items():
            if mask.any():
                annotations.append({"id": len(annotations) + 1, "image_id": i + 1,
                                    "category_id": cat_id[name], "segmentation": rle_encode(mask),
                                    "area": int(mask.sum()), "iscrowd": 0})
    return {"images": images, "annotations": annotations, "categories": categories}


def cli_runner(config: Path):
    """run(*args, env=...) runs the installed `tessera` command -> CompletedProcess, with
    its own config file (TESSERA_CONFIG) and no TESSERA_URL/TOKEN unless ``env`` has them."""
    script = Path(sys.executable).with_name("tessera")
    base = [str(script)] if script.exists() else [sys.executable, "-m", "tessera"]

    def run(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
        return subprocess.run([*base, *args], env={**clean, "TESSERA_CONFIG": str(config), **(env or {})},
                              capture_output=True, text=True, timeout=timeout)

    def popen(*args: str, env: dict | None = None) -> subprocess.Popen:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
        return subprocess.Popen([*base, *args], env={**clean, "TESSERA_CONFIG": str(config), **(env or {})},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    run.config = config  # type: ignore[attr-defined]
    run.popen = popen  # type: ignore[attr-defined]
    return run


@pytest.fixture
def cli(tmp_path: Path):
    return cli_runner(tmp_path / "tessera-config.json")
