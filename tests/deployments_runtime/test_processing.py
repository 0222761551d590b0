"""Preprocessing/postprocessing in numpy match the PyTorch contract used by training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deployments.runtime import processing
from deployments.runtime.processing import (
    check_image,
    logits_to_class_map,
    preprocess,
    resize_bilinear,
)
from training.modeling import inference as training_inference


@pytest.mark.parametrize(
    "src,dst",
    [((37, 53), (64, 64)), ((300, 200), (64, 96)), ((16, 16), (90, 33)), ((8, 8), (8, 8))],
)
def test_resize_matches_torch_bilinear(src: tuple[int, int], dst: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    data = rng.random((*src, 5)).astype(np.float32)
    ours = resize_bilinear(data, *dst)
    ref = F.interpolate(
        torch.from_numpy(data).permute(2, 0, 1)[None],
        size=dst,
        mode="bilinear",
        align_corners=False,
    )
    assert ours.shape == (*dst, 5)
    np.testing.assert_allclose(ours, ref[0].permute(1, 2, 0).numpy(), atol=2e-5)


def test_preprocess_matches_training_preprocess() -> None:
    rng = np.random.default_rng(1)
    images = [
        rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(64, 64), (97, 61), (30, 140), (64, 48)]
    ]
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    ours = preprocess(images, (64, 48), mean, std)
    ref = training_inference.preprocess(images, (64, 48), mean, std).numpy()
    assert ours.shape == (4, 3, 64, 48) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_class_map_matches_training_postprocess() -> None:
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(5, 16, 16)).astype(np.float32)
    ours = logits_to_class_map(logits, 70, 50)
    ref = training_inference.logits_to_class_map(torch.from_numpy(logits), (70, 50))
    assert ours.shape == (70, 50) and ours.dtype == np.uint8
    assert (ours == ref).mean() > 0.999  # only float ties may differ


@pytest.mark.parametrize(("channels", "src", "dst"), [
    (151, (32, 32), (130, 120)),  # many classes, upsampling across several row blocks
    (4, (40, 30), (17, 23)),  # downsampling
    (2, (8, 8), (8, 8)),  # same size
])
def test_blockwise_class_map_equals_the_full_upsample_argmax(channels, src, dst) -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(channels, *src)).astype(np.float32)
    logits[:, 0, 0] = 1.0  # a tie between every class: the lowest index must win
    full = np.argmax(resize_bilinear(logits.transpose(1, 2, 0), *dst), axis=2).astype(np.uint8)
    assert np.array_equal(logits_to_class_map(logits, *dst, rows=16), full)


@pytest.mark.parametrize("kind", ["smooth", "near_ties", "flat", "one_class"])
@pytest.mark.parametrize("dst", [(130, 97), (16, 11), (32, 24), (1, 1)])
def test_class_map_shortcut_equals_the_full_upsample_argmax(kind, dst, monkeypatch) -> None:
    """Regions whose source pixels agree take their winner without interpolating; the
    result must still be the full computation's, pixel for pixel, ties included."""
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[0:32, 0:24] / 16.0
    logits = np.stack([np.sin(yy * (c + 1)) + np.cos(xx * (c + 2)) for c in range(5)]) * 10
    logits = logits.astype(np.float32)
    if kind == "near_ties":  # class 2 a hair above or below class 1 (and equal where 0)
        logits[2] = logits[1] + rng.choice([-1e-6, 0.0, 1e-6], size=logits[1].shape)
    elif kind == "flat":  # every class equal everywhere: background wins
        logits[:] = 3.0
    elif kind == "one_class":
        logits = logits[:1]
    full = np.argmax(resize_bilinear(logits.transpose(1, 2, 0), *dst), axis=2).astype(np.uint8)
    every_pixel = []
    rows = processing._class_map_rows
    monkeypatch.setattr(processing, "_class_map_rows",
                        lambda *a: every_pixel.append(1) or rows(*a))
    assert np.array_equal(logits_to_class_map(logits, *dst), full)
    if kind == "smooth":
        assert not every_pixel  # the shortcut was taken
    if kind == "flat":
        assert every_pixel  # nothing is certain: every pixel computed


def test_check_image_accepts_grey_and_rgba_and_rejects_the_rest() -> None:
    grey = np.full((4, 5), 7, np.uint8)
    assert check_image(grey).shape == (4, 5, 3)
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0] = 9
    out = check_image(rgba)
    assert out.shape == (4, 5, 3) and (out[..., 0] == 9).all()
    with pytest.raises(ValueError, match="uint8"):
        check_image(np.zeros((4, 5, 3), np.float32))
    with pytest.raises(ValueError, match="shape|\\(H, W"):
        check_image(np.zeros((4, 5, 2), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        check_image(np.zeros((0, 5, 3), np.uint8))
