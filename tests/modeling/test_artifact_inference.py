"""training.modeling.artifact and .inference: the shared artifact contract."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from training.modeling.artifact import ArtifactError, load_artifact, read_meta, save_artifact
from training.modeling.inference import (
    SemanticLogitsModel,
    predict_class_maps,
    preprocess,
    semantic_logits,
)
from training.modeling.registry import IMAGENET_MEAN, IMAGENET_STD, build_model, get_spec

from .conftest import NUM_LABELS, pairs


def _meta(family: str, num_labels: int = NUM_LABELS) -> dict:
    classes = [{"index": 0, "name": "background", "color": "#000000"}]
    classes += [{"index": i, "name": f"shape{i}", "color": "#112233"} for i in range(1, num_labels)]
    return {"format": 1, "family": family, "variant": "tiny", "classes": classes, "resolution": [64, 64],
            "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "metrics": {"miou": 0.5},
            "workflow": {"steps": 3}, "run": {"id": 7}}


def _model(family: str, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(get_spec(family, "tiny"), NUM_LABELS, "none").eval()


@pytest.mark.parametrize("family", ["segformer", "mask2former"])
def test_round_trip_gives_identical_predictions(tmp_path: Path, family: str) -> None:
    model = _model(family)
    images = [im for im, _ in pairs(5, seed=8, sizes=((64, 64), (90, 70), (33, 47)))]
    before = predict_class_maps(model, _meta(family), images)
    with torch.no_grad():
        x = preprocess(images[:2], (64, 64), IMAGENET_MEAN, IMAGENET_STD)
        logits_before = semantic_logits(model, x)

    save_artifact(model, _meta(family), tmp_path / "art")
    assert (tmp_path / "art" / "model" / "config.json").is_file()
    assert (tmp_path / "art" / "model" / "model.safetensors").is_file()
    meta_on_disk = json.loads((tmp_path / "art" / "tessera.json").read_text())
    assert meta_on_disk["family"] == family and meta_on_disk["run"] == {"id": 7}

    loaded, meta = load_artifact(tmp_path / "art")
    assert not loaded.training
    assert loaded.config.id2label[1] == "shape1"
    after = predict_class_maps(loaded, meta, images, batch_size=2)
    for a, b, image in zip(before, after, images, strict=True):
        assert a.shape == image.shape[:2] and a.dtype == np.uint8
        assert np.array_equal(a, b)
    with torch.no_grad():
        torch.testing.assert_close(semantic_logits(loaded, x), logits_before, rtol=0, atol=1e-6)


def test_mask2former_logits_combine_class_and_mask_scores() -> None:
    model = _model("mask2former")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = model(pixel_values=x)
        logits = SemanticLogitsModel(model)(x)
    assert logits.shape == (2, NUM_LABELS, 16, 16)
    classes = out.class_queries_logits.softmax(-1)[..., :-1]  # drop "no object"
    masks = out.masks_queries_logits.sigmoid()
    n, c, q = 1, 3, torch.arange(classes.shape[1])
    manual = (classes[n, q, c][:, None, None] * masks[n, q]).sum(0)
    torch.testing.assert_close(logits[n, c], manual)


def test_preprocess_is_a_plain_bilinear_resize_and_normalisation() -> None:
    image = pairs(1, seed=3, sizes=((80, 60),))[0][0]
    x = preprocess([image], (64, 64), IMAGENET_MEAN, IMAGENET_STD)
    assert x.shape == (1, 3, 64, 64) and x.dtype == torch.float32
    # cv2's INTER_LINEAR is the same half-pixel bilinear resize (no antialias)
    ref = cv2.resize(image.astype(np.float32), (64, 64), interpolation=cv2.INTER_LINEAR) / 255.0
    ref = (ref - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(x[0].numpy().transpose(1, 2, 0), ref, atol=1e-4)


def test_predictions_do_not_depend_on_batching_and_restore_train_mode() -> None:
    model = _model("segformer").train()
    images = [im for im, _ in pairs(6, seed=9, sizes=((64, 64), (50, 80)))]
    one = predict_class_maps(model, _meta("segformer"), images, batch_size=1)
    many = predict_class_maps(model, _meta("segformer"), images, batch_size=6)
    assert all(np.array_equal(a, b) for a, b in zip(one, many, strict=True))
    assert model.training


def test_save_is_atomic_and_validates(tmp_path: Path) -> None:
    model = _model("segformer")
    target = tmp_path / "art"
    save_artifact(model, _meta("segformer"), target)
    first = (target / "model" / "model.safetensors").read_bytes()
    # a bad save leaves the existing artifact as it was, and no temp folders
    with pytest.raises(ArtifactError, match="classes"):
        save_artifact(model, _meta("segformer", num_labels=NUM_LABELS + 1), target)
    assert (target / "model" / "model.safetensors").read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]
    # replacing works and changes the weights
    save_artifact(_model("segformer", seed=5), _meta("segformer"), target)
    assert (target / "model" / "model.safetensors").read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]

    bad = _meta("segformer")
    bad["classes"] = bad["classes"][1:]
    with pytest.raises(ArtifactError, match="background"):
        save_artifact(model, bad, tmp_path / "other")
    assert not (tmp_path / "other").exists()
    with pytest.raises(ArtifactError):
        read_meta(tmp_path)
