"""annotator.intellibrush.onnx_export: the browser's decoder equals the PyTorch decoder.

Tolerances (float32 onnxruntime vs PyTorch on CPU): predicted IoU within 1e-4, low-res
logits within 1e-4, and the thresholded full-size mask equal on at least 99.9% of pixels
(differences can only appear where a logit is within rounding of 0). Measured here:
score and logit differences below 1e-6, masks identical.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
import torch

from annotator.intellibrush.onnx_export import (
    OnnxDecoder,
    cached_decoder_onnx,
    decoder_inputs,
    export_decoder_onnx,
    weights_fingerprint,
)
from annotator.intellibrush.sam import EmbeddingRecord, SamEngine, build_sam


def _prompts(height: int, width: int) -> list[tuple]:
    """(points, labels, box, use_previous_mask) covering every kind of prompt."""
    cx, cy = width * 0.5, height * 0.45
    box = np.array([width * 0.1, height * 0.15, width * 0.8, height * 0.9])
    return [
        (np.array([[cx, cy]]), np.array([1]), None, False),
        (np.array([[cx, cy], [width * 0.1, height * 0.1]]), np.array([1, 0]), None, False),
        (None, None, box, False),
        (np.array([[cx, cy]]), np.array([1]), box, False),
        (np.array([[cx, cy], [width * 0.9, height * 0.2]]), np.array([1, 0]), None, True),
        (np.array([[cx, cy]]), np.array([1]), None, True),
    ]


def _compare(engine: SamEngine, decoder: OnnxDecoder, record: EmbeddingRecord) -> None:
    height, width = record.original_size
    previous = engine.decode(record, np.array([[width / 2, height / 2]]), np.array([1]))
    for points, labels, box, use_mask in _prompts(height, width):
        mask_input = previous.low_res_logits if use_mask else None
        torch_result = engine.decode(record, points, labels, box, mask_input)
        onnx_result = decoder.decode(record, points, labels, box, mask_input)
        assert onnx_result.mask.shape == (height, width)
        assert onnx_result.score == pytest.approx(torch_result.score, abs=1e-4)
        np.testing.assert_allclose(
            onnx_result.low_res_logits, torch_result.low_res_logits, rtol=0, atol=1e-4
        )
        assert (onnx_result.mask == torch_result.mask).mean() >= 0.999


def test_tiny_decoder_matches_pytorch(tmp_path, tiny_engine: SamEngine) -> None:
    from projects.synthetic import make_sample

    path = export_decoder_onnx(tiny_engine.model, tmp_path / "tiny.onnx")
    onnx.checker.check_model(str(path))
    graph = onnx.load(str(path))
    assert [i.name for i in graph.graph.input] == [
        "image_embeddings", "point_coords", "point_labels",
        "mask_input", "has_mask_input", "orig_im_size",
    ]
    assert max(op.version for op in graph.opset_import if op.domain in ("", "ai.onnx")) == 17
    decoder = OnnxDecoder(path)
    for width, height in [(143, 97), (64, 200)]:
        image = make_sample(11, width=width, height=height).image
        _compare(tiny_engine, decoder, tiny_engine.compute_embedding(image))


def test_vit_b_decoder_matches_pytorch(tmp_path, vit_b_model) -> None:
    """Real ViT-B decoder (random weights) on an official-shape embedding, 480x640 image."""
    engine = SamEngine(vit_b_model, "vit_b")
    path = export_decoder_onnx(vit_b_model, tmp_path / "vit_b.onnx")
    assert 10e6 < path.stat().st_size < 30e6  # the ~16 MB decoder, not the encoder
    rng = np.random.default_rng(5)
    embedding = rng.standard_normal((1, 256, 64, 64)).astype(np.float16)
    record = EmbeddingRecord(embedding, (768, 1024), (480, 640), 1024, "vit_b")
    _compare(engine, OnnxDecoder(path), record)


def test_decoder_inputs_follow_the_onnx_recipe(tiny_engine: SamEngine) -> None:
    record = EmbeddingRecord(
        np.zeros((1, 64, 16, 16), np.float16), (128, 256), (50, 100), 256, "tiny"
    )
    feeds = decoder_inputs(record, np.array([[10, 20]]), np.array([1]))
    np.testing.assert_allclose(feeds["point_coords"], [[[25.6, 51.2], [0, 0]]], rtol=1e-6)
    np.testing.assert_array_equal(feeds["point_labels"], [[1, -1]])
    assert feeds["has_mask_input"][0] == 0 and feeds["mask_input"].shape == (1, 1, 64, 64)
    feeds = decoder_inputs(record, None, None, np.array([0, 0, 100, 50]), np.ones((64, 64)))
    np.testing.assert_array_equal(feeds["point_labels"], [[2, 3]])
    np.testing.assert_allclose(feeds["point_coords"], [[[0, 0], [256, 128]]])
    assert feeds["has_mask_input"][0] == 1
    np.testing.assert_array_equal(feeds["orig_im_size"], [50, 100])


def test_cached_export_is_reused_and_keyed_by_weights(tmp_path, tiny_engine: SamEngine) -> None:
    first = cached_decoder_onnx(tiny_engine, tmp_path)
    stamp = first.stat().st_mtime_ns
    os.utime(first, ns=(stamp - 10**9, stamp - 10**9))
    again = cached_decoder_onnx(tiny_engine, tmp_path)
    assert again == first and again.stat().st_mtime_ns == stamp - 10**9  # not re-exported
    assert "tiny" in first.name and not list(tmp_path.glob("*.tmp"))

    other = build_sam("tiny")
    with torch.no_grad():
        other.mask_decoder.iou_token.weight.add_(1.0)
    assert weights_fingerprint(other) != weights_fingerprint(tiny_engine.model)
    second = cached_decoder_onnx(SamEngine(other, "tiny"), tmp_path)
    assert second != first and second.is_file()


@pytest.mark.parametrize(
    ("model_type", "original_size"), [("vit_l", (533, 800)), ("vit_h", (1201, 677))]
)
def test_large_backbone_decoders_match_pytorch(tmp_path, monkeypatch, model_type, original_size) -> None:
    """Every official type, not only vit_b: the decoder the service exports for vit_l and
    vit_h (its decoder-only engine, via ``cached_decoder_onnx``) decodes like PyTorch.

    Built like the web process does it (``SamEngine.load(decoder_only=True)``: the
    registry's full model, then the image encoder dropped), with random weights because
    no checkpoint is installed here. Embeddings are random official-shape tensors, so no
    ViT runs. Measured on a 2-core CPU: vit_l 11 s, vit_h 12.5 s (build 2 s / 5.5 s, the
    rest export and 12 decodes); peak RSS of the pytest process 2.2 GB / 3.5 GB, because
    the service builds the encoder before dropping it. Freed when the test ends.
    """
    from segment_anything.utils.transforms import ResizeLongestSide

    from annotator.intellibrush import sam as sam_module

    assert set(sam_module.MODEL_TYPES) == {"tiny", "vit_b", "vit_l", "vit_h"}, (
        "a new SAM model type needs a decoder export test here"
    )
    monkeypatch.setattr(sam_module, "resolve_checkpoint", lambda *args, **kwargs: None)
    engine = SamEngine.load(model_type, decoder_only=True)
    assert not engine.has_encoder and engine.model_type == model_type
    assert engine.model.image_encoder.img_size == 1024

    path = cached_decoder_onnx(engine, tmp_path)
    assert model_type in path.name and 10e6 < path.stat().st_size < 30e6
    onnx.checker.check_model(str(path))

    channels = engine.model.prompt_encoder.embed_dim
    grid_h, grid_w = engine.model.prompt_encoder.image_embedding_size
    assert (channels, grid_h, grid_w) == (256, 64, 64)
    rng = np.random.default_rng(7)
    embedding = rng.standard_normal((1, channels, grid_h, grid_w)).astype(np.float16)
    input_size = ResizeLongestSide.get_preprocess_shape(*original_size, 1024)
    assert input_size[0] != input_size[1]  # non-square: the crop follows orig_im_size
    record = EmbeddingRecord(embedding, input_size, original_size, 1024, model_type)
    _compare(engine, OnnxDecoder(path), record)
