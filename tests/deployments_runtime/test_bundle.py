"""The standalone bundle runs in a fresh virtualenv holding only onnxruntime, numpy and
Pillow, and gives the same masks as the platform's predictor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from deployments.runtime import build_bundle_from_artifact, create_predictor

BUNDLE_MEMBERS = {
    "model.onnx",
    "classes.json",
    "preprocessing.json",
    "tessera.json",
    "tessera_processing.py",
    "predict.py",
    "README.md",
}


def test_bundle_contents(trained_artifact: Path, tmp_path: Path) -> None:
    bundle = build_bundle_from_artifact(
        trained_artifact, tmp_path / "model.zip", cache_dir=tmp_path / "cache"
    )
    with zipfile.ZipFile(bundle) as archive:
        assert set(archive.namelist()) == BUNDLE_MEMBERS
        classes = json.loads(archive.read("classes.json"))
        settings = json.loads(archive.read("preprocessing.json"))
        readme = archive.read("README.md").decode()
    assert classes[0] == {"index": 0, "name": "background", "color": "#000000"}
    assert [c["name"] for c in classes[1:]] == ["circle", "rectangle", "triangle", "ellipse"]
    assert settings["resolution"] == [64, 64] and len(settings["mean"]) == 3
    assert "pip install onnxruntime numpy pillow" in readme and "| 2 | rectangle |" in readme


def test_bundle_runs_in_a_fresh_venv_and_matches_the_predictor(
    trained_artifact: Path, val_set, tmp_path: Path
) -> None:
    bundle = build_bundle_from_artifact(
        trained_artifact, tmp_path / "model.zip", cache_dir=tmp_path / "cache"
    )
    unpacked = tmp_path / "bundle"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(unpacked)

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    python = env_dir / "bin" / "python"
    clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "onnxruntime", "numpy", "pillow"],
        check=True,
        env=clean_env,
        timeout=600,
    )
    # Nothing else is importable there: not torch, not the platform.
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util as u; print(u.find_spec('torch'), u.find_spec('deployments'))",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env,
        cwd=tmp_path,
    )
    assert probe.stdout.split() == ["None", "None"]

    images_dir = tmp_path / "images"
    images_dir.mkdir()
    paths = []
    for i, image in enumerate(val_set.images[:6]):
        paths.append(images_dir / f"img{i}.png")
        Image.fromarray(image).save(paths[-1])
    out = subprocess.run(
        [
            str(python),
            str(unpacked / "predict.py"),
            *map(str, paths),
            "--out",
            str(tmp_path / "masks"),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=clean_env,
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert [s["image"] for s in summary] == [str(p) for p in paths]

    predictor = create_predictor(trained_artifact, "onnxruntime", cache_dir=tmp_path / "cache")
    expected = predictor.predict_batch(val_set.images[:6])
    for item, want in zip(summary, expected, strict=True):
        mask_image = Image.open(item["mask"])
        assert mask_image.mode == "P"
        got = np.asarray(mask_image)
        assert got.shape == want.shape
        assert (got == want).mean() > 0.9999
        names = [c["name"] for c in predictor.meta.classes]
        areas = {
            names[label]: int((got == label).sum())
            for label in range(1, len(names))
            if (got == label).any()
        }
        assert item["areas"] == areas
    assert sys.executable != str(python)
