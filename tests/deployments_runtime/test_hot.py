"""HotModels: each model is loaded once per process, shared by concurrent callers, evicted LRU."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from deployments.runtime import HotModels, create_predictor, rle_decode


def test_loaded_once_and_shared_by_concurrent_callers(
    trained_artifact: Path, val_set, tmp_path: Path
) -> None:
    hot_models = HotModels(capacity=2, max_batch=4, max_wait_ms=20, cache_dir=tmp_path)
    images = val_set.images[:8]
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(
                pool.map(
                    lambda img: hot_models.get(trained_artifact).predict([img], timeout=60)[0],
                    images,
                )
            )
        assert hot_models.loads == 1
        hot = hot_models.get(trained_artifact)
        assert hot.queue.stats()["items"] == 8 and hot.queue.stats()["batches"] < 8
        expected = create_predictor(
            trained_artifact, "onnxruntime", cache_dir=tmp_path / "direct"
        ).predict_batch(images)
        for got, want in zip(results, expected, strict=True):
            assert (got == want).mean() > 0.9999
        (payload,) = hot.predict_encoded(images[:1], timeout=60)
        rebuilt = np.zeros_like(results[0])
        for pred in payload["predictions"]:
            rebuilt[rle_decode(pred["rle"])] = pred["label"]
        assert np.array_equal(rebuilt, results[0])
    finally:
        hot_models.close()


def test_least_recently_used_model_is_evicted(trained_artifact: Path, tmp_path: Path) -> None:
    copies = []
    for name in ("a", "b", "c"):
        copies.append(tmp_path / name)
        shutil.copytree(trained_artifact, copies[-1])
    hot_models = HotModels(capacity=2, cache_dir=tmp_path / "cache")
    try:
        first = hot_models.get(copies[0], "pytorch")
        hot_models.get(copies[1], "pytorch")
        hot_models.get(copies[0], "pytorch")  # a is now the most recent
        hot_models.get(copies[2], "pytorch")  # evicts b
        assert [Path(k.artifact_dir).name for k in hot_models.loaded()] == ["a", "c"]
        assert hot_models.get(copies[0], "pytorch") is first and hot_models.loads == 3
        assert hot_models.evict(copies[0]) == 1
        assert [Path(k.artifact_dir).name for k in hot_models.loaded()] == ["c"]
    finally:
        hot_models.close()
