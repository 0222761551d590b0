"""training.modeling.registry: specs, building, and the weights policy."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from training.modeling.config import TrainConfig, estimate_memory_gb, validate_config
from training.modeling.registry import (
    ModelRegistryError,
    WeightsNotFoundError,
    build_model,
    get_spec,
    list_specs,
    resolve_weights,
)

from .conftest import NUM_LABELS


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No weights anywhere: an empty weights dir, an empty HF cache, no Hub."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("TESSERA_WEIGHTS_DIR", raising=False)
    return tmp_path


def test_registry_covers_both_families() -> None:
    segformer = {s.variant for s in list_specs("segformer")}
    mask2former = {s.variant for s in list_specs("mask2former")}
    assert segformer == {"b0", "b1", "b2", "b3", "b4", "b5", "tiny"}
    assert mask2former == {"swin-tiny", "swin-small", "swin-base", "swin-large", "tiny"}
    b0 = get_spec("segformer", "b0")
    assert b0.pretrained["imagenet"] == "nvidia/mit-b0"
    assert b0.pretrained["ade20k"] == "nvidia/segformer-b0-finetuned-ade-512-512"
    assert get_spec("mask2former", "swin-tiny").pretrained["ade20k"] == "facebook/mask2former-swin-tiny-ade-semantic"
    assert get_spec("segformer", "tiny").pretrained_sources() == ["none"]
    assert get_spec("segformer", "b5").memory_gb > b0.memory_gb
    with pytest.raises(ModelRegistryError, match="b0"):
        get_spec("segformer", "b9")
    with pytest.raises(ModelRegistryError, match="family"):
        get_spec("unet", "tiny")


@pytest.mark.parametrize("family", ["segformer", "mask2former"])
def test_tiny_models_build_with_random_weights(family: str) -> None:
    torch.manual_seed(0)
    model = build_model(get_spec(family, "tiny"), NUM_LABELS, "none")
    assert model.config.num_labels == NUM_LABELS
    assert sum(p.numel() for p in model.parameters()) < 2_000_000
    with torch.no_grad():
        out = model.eval()(pixel_values=torch.randn(2, 3, 64, 64))
    if family == "segformer":
        assert out.logits.shape == (2, NUM_LABELS, 16, 16)
    else:  # one extra "no object" class
        assert out.class_queries_logits.shape[-1] == NUM_LABELS + 1
        assert out.masks_queries_logits.shape[-2:] == (16, 16)


def test_b0_config_matches_the_published_architecture() -> None:
    model = build_model(get_spec("segformer", "b0"), 151, "none")
    n = sum(p.numel() for p in model.parameters())
    assert 3.5e6 < n < 4.0e6  # SegFormer-B0 with ADE20k's 150 classes + background: 3.8 M


def test_missing_weights_raise_a_clear_error(offline: Path) -> None:
    spec = get_spec("segformer", "b0")
    with pytest.raises(WeightsNotFoundError) as info:
        build_model(spec, NUM_LABELS, "imagenet", weights_dir=offline / "weights")
    message = str(info.value)
    assert "nvidia/mit-b0" in message
    assert str(offline / "weights") in message and "TESSERA_WEIGHTS_DIR" in message
    assert "pretrained='none'" in message
    assert info.value.looked_in[-1].startswith("the Hub (skipped")
    # the default source of a full-size model is a pretrained one, never random
    with pytest.raises(WeightsNotFoundError):
        build_model(spec, NUM_LABELS, None, weights_dir=offline / "weights")
    with pytest.raises(ModelRegistryError, match="imagenet"):
        build_model(spec, NUM_LABELS, "pascal")


def test_weights_dir_is_used_first(offline: Path) -> None:
    # A "published" checkpoint (tiny, 9 labels) placed in the weights folder under its Hub id.
    tiny = get_spec("segformer", "tiny")
    torch.manual_seed(1)
    published = build_model(tiny, 9, "none")
    weights = offline / "weights"
    published.save_pretrained(weights / "acme" / "tiny-seg")
    spec = dataclasses.replace(tiny, pretrained={"ade20k": "acme/tiny-seg"}, default_pretrained="ade20k")
    assert resolve_weights("acme/tiny-seg", weights) == str(weights / "acme" / "tiny-seg")

    torch.manual_seed(2)
    model = build_model(spec, NUM_LABELS, "ade20k", weights_dir=weights)
    assert model.config.num_labels == NUM_LABELS
    src = published.state_dict()
    got = model.state_dict()
    encoder = [k for k in src if k.startswith("segformer.")]
    assert encoder and all(torch.equal(src[k], got[k]) for k in encoder)
    # the classifier had 9 outputs: re-initialised for NUM_LABELS
    assert got["decode_head.classifier.weight"].shape[0] == NUM_LABELS

    # "--" layout and the environment variable work too
    published.save_pretrained(offline / "env-weights" / "acme--tiny-seg")
    import os

    os.environ["TESSERA_WEIGHTS_DIR"] = str(offline / "env-weights")
    try:
        assert resolve_weights("acme/tiny-seg").endswith("acme--tiny-seg")
    finally:
        del os.environ["TESSERA_WEIGHTS_DIR"]


def test_start_from_an_earlier_artifact(tmp_path: Path) -> None:
    from training.modeling.artifact import save_artifact

    torch.manual_seed(0)
    spec = get_spec("segformer", "tiny")
    first = build_model(spec, NUM_LABELS, "none")
    classes = [{"index": i, "name": f"c{i}", "color": "#000000"} for i in range(NUM_LABELS)]
    meta = {"family": "segformer", "variant": "tiny", "classes": classes, "resolution": [64, 64],
            "mean": [0.5] * 3, "std": [0.5] * 3}
    save_artifact(first, meta, tmp_path / "art")
    again = build_model(spec, NUM_LABELS, str(tmp_path / "art"))
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True))
    more_classes = build_model(spec, NUM_LABELS + 2, str(tmp_path / "art"))
    assert more_classes.config.num_labels == NUM_LABELS + 2
    with pytest.raises(ModelRegistryError, match="segformer"):
        build_model(get_spec("mask2former", "tiny"), NUM_LABELS, str(tmp_path / "art"))
    assert json.loads((tmp_path / "art" / "tessera.json").read_text())["family"] == "segformer"


def test_config_validation_lists_every_problem() -> None:
    assert validate_config(TrainConfig(family="segformer", variant="tiny", steps=10)) == []
    bad = TrainConfig(family="segformer", variant="tiny", resolution=(500, 500), batch_size=0, steps=5,
                      warmup_steps=10, schedule="step", pretrained="imagenet", keep_best_metric="loss")
    problems = validate_config(bad)
    text = " | ".join(problems)
    for fragment in ("resolution 500x500", "batch_size", "warmup_steps", "schedule", "pretrained source 'imagenet'", "keep_best_metric"):
        assert fragment in text
    assert validate_config(TrainConfig(family="mask2former", variant="b0")) == [
        "unknown mask2former variant 'b0'; choose one of ['swin-tiny', 'swin-small', 'swin-base', 'swin-large', 'tiny']"
    ]
    small = estimate_memory_gb(TrainConfig(family="segformer", variant="b2", batch_size=2))
    large = estimate_memory_gb(TrainConfig(family="segformer", variant="b2", batch_size=16, resolution=(1024, 1024)))
    assert large > 4 * small
