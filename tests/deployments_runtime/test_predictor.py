"""Predictors on real (tiny) models: every runtime gives the same class maps as training's
inference, within the precision the runtime offers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from deployments.runtime import (
    ArtifactError,
    RuntimeUnavailable,
    create_predictor,
    load_model,
    rle_decode,
)
from deployments.runtime.report import evaluate_predictor
from training.modeling.inference import predict_class_maps


def _agreement(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert [x.shape for x in a] == [y.shape for y in b]
    return float(np.mean(np.concatenate([(x == y).ravel() for x, y in zip(a, b, strict=True)])))


def test_pytorch_predictor_equals_training_inference(trained_artifact: Path, val_set) -> None:
    predictor = create_predictor(trained_artifact, "pytorch")
    model, meta = load_model(trained_artifact)
    ours = predictor.predict_batch(val_set.images)
    ref = predict_class_maps(model, meta.to_dict(), val_set.images)
    assert [m.shape for m in ours] == [img.shape[:2] for img in val_set.images]
    assert all(m.dtype == np.uint8 for m in ours)
    assert _agreement(ours, ref) == 1.0


def test_trained_model_segments_the_validation_set(trained_artifact: Path, val_set) -> None:
    predictor = create_predictor(trained_artifact, "pytorch")
    metrics = evaluate_predictor(predictor, val_set.images, val_set.targets)
    assert metrics["miou"] > 0.6  # random init gives ~0.1; the fixture trains for seconds


def test_onnxruntime_matches_pytorch(trained_artifact: Path, val_set, tmp_path: Path) -> None:
    eager = create_predictor(trained_artifact, "pytorch").predict_batch(val_set.images)
    ort = create_predictor(trained_artifact, "onnxruntime", cache_dir=tmp_path, threads=2)
    assert ort.runtime == "onnxruntime" and (tmp_path / "model.onnx").is_file()
    assert _agreement(ort.predict_batch(val_set.images), eager) > 0.999


@pytest.mark.parametrize("calibrated", [False, True], ids=["dynamic", "static"])
def test_int8_predictor_stays_close(
    trained_artifact: Path, val_set, tmp_path: Path, calibrated: bool
) -> None:
    eager = create_predictor(trained_artifact, "pytorch")
    int8 = create_predictor(
        trained_artifact,
        "onnxruntime-int8",
        cache_dir=tmp_path,
        calibration_images=val_set.images[:8] if calibrated else None,
    )
    expected = tmp_path / ("model.int8-static.onnx" if calibrated else "model.int8-dynamic.onnx")
    assert int8.onnx_path == expected and int8.runtime == "onnxruntime-int8"
    assert expected.stat().st_size < 0.6 * (tmp_path / "model.onnx").stat().st_size
    assert _agreement(int8.predict_batch(val_set.images), eager.predict_batch(val_set.images)) > 0.9
    base = evaluate_predictor(eager, val_set.images, val_set.targets)["miou"]
    assert evaluate_predictor(int8, val_set.images, val_set.targets)["miou"] > base - 0.1


def test_exports_are_cached_between_predictors(trained_artifact: Path, tmp_path: Path) -> None:
    create_predictor(trained_artifact, "onnxruntime", cache_dir=tmp_path)
    stamp = (tmp_path / "model.onnx").stat().st_mtime_ns
    create_predictor(trained_artifact, "onnxruntime", cache_dir=tmp_path)
    assert (tmp_path / "model.onnx").stat().st_mtime_ns == stamp


def test_batch_equals_one_by_one(trained_artifact: Path, val_set, tmp_path: Path) -> None:
    for runtime in ("pytorch", "onnxruntime"):
        predictor = create_predictor(trained_artifact, runtime, cache_dir=tmp_path)
        batched = predictor.predict_batch(val_set.images[:6])
        single = [predictor.predict(image) for image in val_set.images[:6]]
        assert _agreement(batched, single) > 0.9999, runtime
    assert predictor.predict_batch([]) == []


def test_predict_encoded_decodes_to_the_class_map(
    trained_artifact: Path, val_set, tmp_path: Path
) -> None:
    predictor = create_predictor(trained_artifact, "onnxruntime", cache_dir=tmp_path)
    image = val_set.images[3]
    class_map = predictor.predict(image)
    (payload,) = predictor.predict_encoded([image], polygons=True, png=True)
    assert (payload["height"], payload["width"]) == class_map.shape
    rebuilt = np.zeros_like(class_map)
    for pred in payload["predictions"]:
        mask = rle_decode(pred["rle"])
        assert pred["area"] == int(mask.sum()) > 0
        assert pred["class_name"] == predictor.meta.classes[pred["label"]]["name"]
        rebuilt[mask] = pred["label"]
    assert np.array_equal(rebuilt, class_map)
    assert payload["png"]


def test_mask2former_runs_in_both_runtimes(m2f_artifact: Path, val_set, tmp_path: Path) -> None:
    eager = create_predictor(m2f_artifact, "pytorch").predict_batch(val_set.images[:6])
    ort = create_predictor(m2f_artifact, "onnxruntime", cache_dir=tmp_path).predict_batch(
        val_set.images[:6]
    )
    assert _agreement(ort, eager) > 0.999


def test_bad_runtime_or_device_is_refused(trained_artifact: Path) -> None:
    with pytest.raises(ValueError, match="runtime"):
        create_predictor(trained_artifact, "tensorrt")
    with pytest.raises(ValueError, match="device"):
        create_predictor(trained_artifact, "pytorch", device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeUnavailable, match="cuda"):
            create_predictor(trained_artifact, "pytorch", device="cuda")


def test_not_an_artifact_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="tessera.json"):
        create_predictor(tmp_path, "onnxruntime")


def test_cpu_instances_run_forwards_side_by_side_with_the_same_masks(
    trained_artifact: Path, val_set, tmp_path: Path
) -> None:
    single = create_predictor(trained_artifact, "onnxruntime", cache_dir=tmp_path)
    parallel = create_predictor(trained_artifact, "onnxruntime", cache_dir=tmp_path, instances=2)
    assert (single.lanes, parallel.lanes) == (1, 2) and parallel.narrow is not None
    parallel.warm_up()  # both sessions run once before any request
    images = val_set.images[:8]
    expected = single.predict_batch(images)
    sessions_used = []
    run = parallel.narrow.run

    def counting_run(*args, **kwargs):
        sessions_used.append("narrow")
        return run(*args, **kwargs)

    parallel.narrow.run = counting_run
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda image: parallel.predict(image), images))
    assert _agreement(got, expected) > 0.9999
    assert sessions_used  # some forwards found another running and took the second session
    assert parallel.predict(images[0]).shape == expected[0].shape  # alone: the all-core one


def test_announced_images_send_a_forward_to_the_shared_cores_before_a_second_one_starts(
    trained_artifact: Path, val_set, tmp_path: Path
) -> None:
    predictor = create_predictor(trained_artifact, "onnxruntime", cache_dir=tmp_path, instances=2)
    used: list[str] = []
    for name in ("session", "narrow"):
        session = getattr(predictor, name)
        run = session.run
        session.run = lambda *a, _run=run, _name=name, **k: used.append(_name) or _run(*a, **k)
    image = val_set.images[0]
    alone = predictor.predict(image)
    with predictor.expecting(1):  # only this request in flight: every core
        predictor.predict(image)
    with predictor.expecting(1), predictor.expecting(1):  # a second request is being decoded
        shared = predictor.predict(image)
    predictor.predict(image)  # that one is done: alone again
    assert used == ["session", "session", "narrow", "session"]
    assert np.array_equal(shared, alone)
