"""annotator.intellibrush.sam: a stored embedding decodes like a fresh SamPredictor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor

from annotator.intellibrush import sam as sam_module
from annotator.intellibrush.sam import (
    EmbeddingRecord,
    SamEngine,
    SamWeightsNotFound,
    build_sam,
    default_multimask,
    mask_to_low_res_logits,
    resolve_checkpoint,
)

# Prompts in original-image pixels of the 97x143 test image; "mask" means: pass the
# low-res logits of a previous one-click prediction as mask_input.
PROMPTS: dict[str, dict] = {
    "one_click": {"points": [[70, 50]], "labels": [1]},
    "exclude_only": {"points": [[30, 30]], "labels": [0]},
    "clicks_in_and_out": {"points": [[70, 50], [20, 15], [100, 80]], "labels": [1, 0, 1]},
    "box": {"box": [10, 12, 120, 90]},
    "box_and_click": {"points": [[60, 40]], "labels": [1], "box": [10, 12, 120, 90]},
    "mask_only": {"mask": True},
    "click_and_mask": {"points": [[70, 50], [20, 15]], "labels": [1, 0], "mask": True},
}


def _arrays(prompt: dict, previous_low_res: np.ndarray | None):
    points = np.array(prompt["points"], float) if "points" in prompt else None
    labels = np.array(prompt["labels"]) if "labels" in prompt else None
    box = np.array(prompt["box"], float) if "box" in prompt else None
    mask = previous_low_res if prompt.get("mask") else None
    return points, labels, box, mask


@pytest.fixture(scope="module")
def tiny_setup(tiny_engine: SamEngine, odd_image: np.ndarray):
    record = tiny_engine.compute_embedding(odd_image)
    predictor = SamPredictor(tiny_engine.model)
    predictor.set_image(odd_image)
    previous = tiny_engine.decode(record, np.array([[70.0, 50.0]]), np.array([1])).low_res_logits
    return record, predictor, previous


def test_embedding_equals_predictor_features_in_fp16(tiny_setup, odd_image: np.ndarray) -> None:
    record, predictor, _ = tiny_setup
    assert record.embedding.dtype == np.float16
    assert record.embedding.shape == (1, 64, 16, 16)
    fresh = predictor.get_image_embedding().numpy()
    assert np.array_equal(record.embedding, fresh.astype(np.float16))
    assert record.original_size == (97, 143) == predictor.original_size
    assert record.input_size == predictor.input_size == (174, 256)
    assert record.mask_input_size == (64, 64)


@pytest.mark.parametrize("name", list(PROMPTS))
@pytest.mark.parametrize("multimask", [True, False])
def test_decode_matches_sam_predictor(tiny_setup, name: str, multimask: bool) -> None:
    """Exactly SamPredictor.predict when the predictor sees the same (fp16-stored) features."""
    record, predictor, previous = tiny_setup
    points, labels, box, mask = _arrays(PROMPTS[name], previous)
    predictor.features = torch.as_tensor(record.embedding).float()
    ref_masks, ref_scores, ref_low = predictor.predict(points, labels, box, mask, multimask)
    engine = SamEngine(predictor.model, "tiny")
    masks, scores, low = engine.decode_all(record, points, labels, box, mask, multimask=multimask)
    assert masks.shape == ref_masks.shape == ((3 if multimask else 1), 97, 143)
    assert masks.dtype == bool
    assert np.array_equal(masks, ref_masks)
    np.testing.assert_allclose(scores, ref_scores, rtol=0, atol=1e-6)
    np.testing.assert_allclose(low, ref_low, rtol=0, atol=1e-5)

    best = engine.decode(record, points, labels, box, mask, multimask=multimask)
    index = int(np.argmax(ref_scores))
    assert np.array_equal(best.mask, ref_masks[index])
    assert best.score == pytest.approx(float(ref_scores[index]), abs=1e-6)
    assert best.low_res_logits.shape == (1, 64, 64)


@pytest.mark.parametrize("name", ["one_click", "clicks_in_and_out", "box_and_click"])
def test_fp16_storage_stays_close_to_fp32_prediction(
    tiny_setup, odd_image: np.ndarray, name: str
) -> None:
    """Against an untouched fp32 SamPredictor the stored fp16 embedding changes little:
    scores within 1e-4 and at least 99.9% of mask pixels equal (measured: score
    difference ~1e-6, at most 1 pixel in 14k flipped, where logits sit at the threshold)."""
    record, _, previous = tiny_setup
    predictor = SamPredictor(build_sam("tiny"))
    predictor.set_image(odd_image)
    points, labels, box, mask = _arrays(PROMPTS[name], previous)
    ref_masks, ref_scores, _ = predictor.predict(points, labels, box, mask, True)
    masks, scores, _ = SamEngine(predictor.model, "tiny").decode_all(
        record, points, labels, box, mask, multimask=True
    )
    np.testing.assert_allclose(scores, ref_scores, atol=1e-4)
    assert (masks == ref_masks).mean() >= 0.999


def test_npz_round_trip_decodes_identically(tiny_engine: SamEngine, tiny_setup) -> None:
    record, _, _ = tiny_setup
    blob = record.to_npz_bytes()
    again = EmbeddingRecord.from_npz_bytes(blob)
    assert again.model_type == "tiny" and again.image_size == 256
    assert again.input_size == record.input_size and again.original_size == record.original_size
    assert np.array_equal(again.embedding, record.embedding)
    # fp16 payload: about 2 bytes per value plus a small header
    assert len(blob) < record.embedding.size * 2 + 2048
    a = tiny_engine.decode(record, np.array([[70, 50]]), np.array([1]))
    b = tiny_engine.decode(again, np.array([[70, 50]]), np.array([1]))
    assert np.array_equal(a.mask, b.mask) and a.score == b.score


def test_transform_info_maps_clicks_like_resize_longest_side(tiny_setup) -> None:
    record, predictor, _ = tiny_setup
    info = record.transform_info()
    click = np.array([[70.0, 50.0]])
    expected = predictor.transform.apply_coords(click, record.original_size)
    mapped = click * np.array([info["scale_x"], info["scale_y"]])
    np.testing.assert_allclose(mapped, expected, rtol=1e-12)
    assert info["embedding_shape"] == [1, 64, 16, 16] and info["mask_input_size"] == [64, 64]


def test_default_multimask_rule(tiny_engine: SamEngine, tiny_setup) -> None:
    assert default_multimask(1, False) and default_multimask(0, True)
    assert not default_multimask(2, False) and not default_multimask(1, True)
    record, _, _ = tiny_setup
    click = (np.array([[70.0, 50.0]]), np.array([1]))
    masks, scores, _ = tiny_engine.decode_all(record, *click, multimask=True)
    auto = tiny_engine.decode(record, *click)
    assert np.array_equal(auto.mask, masks[int(np.argmax(scores))])


def test_decode_rejects_bad_input(tiny_engine: SamEngine, tiny_setup) -> None:
    record, _, _ = tiny_setup
    with pytest.raises(ValueError):
        tiny_engine.decode(record)
    with pytest.raises(ValueError):
        tiny_engine.decode(record, np.array([[1, 2], [3, 4]]), np.array([1]))
    other = EmbeddingRecord(record.embedding, record.input_size, record.original_size, 1024, "vit_b")
    with pytest.raises(ValueError, match="vit_b"):
        tiny_engine.decode(other, np.array([[1, 2]]), np.array([1]))
    with pytest.raises(ValueError):
        tiny_engine.compute_embedding(np.zeros((8, 8, 3), np.float32))


def test_vit_b_decode_matches_predictor(vit_b_model) -> None:
    """The real ViT-B decoder path: fp16 embedding of the official shape (1, 256, 64, 64)."""
    rng = np.random.default_rng(1)
    original, input_size = (480, 640), (768, 1024)
    embedding = rng.standard_normal((1, 256, 64, 64)).astype(np.float16)
    record = EmbeddingRecord(embedding, input_size, original, 1024, "vit_b")
    predictor = SamPredictor(vit_b_model)
    predictor.features = torch.as_tensor(embedding).float()
    predictor.original_size, predictor.input_size = original, input_size
    predictor.is_image_set = True
    engine = SamEngine(vit_b_model, "vit_b")
    clicks, click_labels = np.array([[320.0, 200.0], [100.0, 90.0]]), np.array([1, 0])
    for points, labels, box in [
        (clicks[:1], click_labels[:1], None),
        (clicks, click_labels, np.array([50.0, 40.0, 500.0, 400.0])),
    ]:
        ref_masks, ref_scores, ref_low = predictor.predict(points, labels, box, None, True)
        masks, scores, low = engine.decode_all(record, points, labels, box, None, multimask=True)
        assert masks.shape == (3, 480, 640) and low.shape == (3, 256, 256)
        assert np.array_equal(masks, ref_masks)
        np.testing.assert_allclose(scores, ref_scores, atol=1e-6)


# ------------------------------------------------------------------ weights policy


@pytest.fixture
def clean_weights_env(tmp_path, monkeypatch):
    for name in ("TESSERA_SAM_CHECKPOINT", "TESSERA_WEIGHTS_DIR", "TESSERA_SAM_ALLOW_DOWNLOAD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    return tmp_path


def test_missing_weights_error_says_what_and_how(clean_weights_env, monkeypatch) -> None:
    monkeypatch.setenv("TESSERA_WEIGHTS_DIR", str(clean_weights_env / "weights"))
    with pytest.raises(SamWeightsNotFound) as info:
        resolve_checkpoint("vit_b", allow_download=False)
    message = str(info.value)
    assert "sam_vit_b_01ec64.pth" in message
    assert "TESSERA_WEIGHTS_DIR" in message and "TESSERA_SAM_CHECKPOINT" in message
    assert str(clean_weights_env / "weights" / "sam_vit_b_01ec64.pth") in message
    with pytest.raises(SamWeightsNotFound):
        sam_module.get_engine("vit_l")
    # tiny needs no file: random weights are its purpose
    assert resolve_checkpoint("tiny") is None


def test_resolution_order(clean_weights_env, monkeypatch) -> None:
    weights = clean_weights_env / "weights"
    (weights / "sam").mkdir(parents=True)
    nested = weights / "sam" / "sam_vit_h_4b8939.pth"
    nested.write_bytes(b"x")
    monkeypatch.setenv("TESSERA_WEIGHTS_DIR", str(weights))
    assert resolve_checkpoint("vit_h") == nested
    top = weights / "sam_vit_h_4b8939.pth"
    top.write_bytes(b"x")
    assert resolve_checkpoint("vit_h") == top
    explicit = clean_weights_env / "my-sam.pth"
    explicit.write_bytes(b"x")
    monkeypatch.setenv("TESSERA_SAM_CHECKPOINT", str(explicit))
    assert resolve_checkpoint("vit_h") == explicit


def test_checkpoint_is_loaded_and_engine_is_loaded_once(clean_weights_env, monkeypatch) -> None:
    trained = build_sam("tiny")
    with torch.no_grad():
        for parameter in trained.parameters():
            parameter.add_(0.5)
    path = clean_weights_env / "tiny.pth"
    torch.save(trained.state_dict(), path)
    monkeypatch.setenv("TESSERA_SAM_CHECKPOINT", str(path))
    sam_module.clear_engines()
    try:
        engine = sam_module.get_engine("tiny")
        assert engine.checkpoint == path
        loaded = engine.model.state_dict()
        for name, value in trained.state_dict().items():
            assert torch.equal(loaded[name], value), name
        assert sam_module.get_engine("tiny") is engine
    finally:
        sam_module.clear_engines()


def test_random_init_is_deterministic() -> None:
    a, b = build_sam("tiny").state_dict(), build_sam("tiny").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError):
        build_sam("vit_x")


def test_decoder_only_engine_decodes_the_same(clean_weights_env, tiny_engine, tiny_setup) -> None:
    record, _, _ = tiny_setup
    light = SamEngine.load("tiny", decoder_only=True)
    assert not light.has_encoder and tiny_engine.has_encoder
    assert sum(p.numel() for p in light.model.parameters()) < sum(
        p.numel() for p in tiny_engine.model.parameters()
    )
    click = (np.array([[70.0, 50.0]]), np.array([1]))
    a, b = light.decode(record, *click), tiny_engine.decode(record, *click)
    assert np.array_equal(a.mask, b.mask) and a.score == b.score
    with pytest.raises(RuntimeError):
        light.compute_embedding(np.zeros((8, 8, 3), np.uint8))


def test_mask_prompt_from_a_full_size_mask(tiny_engine, tiny_setup) -> None:
    record, _, _ = tiny_setup
    mask = np.zeros(record.original_size, bool)
    mask[20:60, 30:100] = True
    low = mask_to_low_res_logits(mask, record)
    assert low.shape == (1, *record.mask_input_size)
    # SAM's own upsampling of these logits gives back the mask, up to the border pixels
    upsampled = tiny_engine.model.postprocess_masks(
        torch.as_tensor(low)[None], record.input_size, record.original_size
    )[0, 0].numpy() > 0
    assert (upsampled == mask).mean() > 0.97
    assert upsampled[25:55, 35:95].all() and not upsampled[70:, :].any()
    result = tiny_engine.decode(record, mask_input=low)
    assert result.mask.shape == record.original_size
    with pytest.raises(ValueError):
        mask_to_low_res_logits(np.zeros((5, 5), bool), record)
