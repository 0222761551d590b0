"""training.modeling.trainer / pipeline: convergence, resume, cancel, checkpoints.

Budgets (1 torch thread; seconds measured on the shared 2-core build machine):
  tiny SegFormer    120 steps x 16 images at 64x64  -> val mIoU >= 0.8  (~0.87 seen)
  tiny Mask2Former  120 steps x  8 images at 64x64  -> val mIoU >= 0.6  (~0.75 seen)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from accelerate.utils import set_seed

from training.modeling.artifact import load_artifact
from training.modeling.config import TrainConfig, TrainingJob
from training.modeling.inference import class_map_and_loss, predict_class_maps
from training.modeling.metrics import ConfusionMatrix
from training.modeling.pipeline import run_training
from training.modeling.registry import build_model, get_spec
from training.modeling.trainer import Trainer, TrainerCallbacks, make_datasets

from .conftest import CLASSES, NUM_LABELS, pairs


class Recorder(TrainerCallbacks):
    def __init__(self, stop_after_step: int | None = None) -> None:
        self.logs: list[tuple[int, dict]] = []
        self.evals: list[tuple[int, dict, list]] = []
        self.checkpoints: list[tuple[int, Path]] = []
        self.stop_after_step = stop_after_step
        self.asked = 0

    def on_log(self, step: int, values: dict) -> None:
        self.logs.append((step, values))

    def on_eval(self, step: int, metrics: dict, samples: list) -> None:
        self.evals.append((step, metrics, samples))

    def on_checkpoint(self, step: int, path: Path, metrics: Any) -> None:
        self.checkpoints.append((step, path))

    def should_stop(self) -> bool:
        self.asked += 1
        return bool(self.stop_after_step is not None and self.logs and self.logs[-1][0] >= self.stop_after_step)


def _miou(model, meta, val_pairs) -> float:
    confusion = ConfusionMatrix(len(meta["classes"]))
    maps = predict_class_maps(model, meta, [im for im, _ in val_pairs], batch_size=5)
    for class_map, (image, mask) in zip(maps, val_pairs, strict=True):
        assert class_map.shape == mask.shape == image.shape[:2] and class_map.dtype == np.uint8
        confusion.update(class_map, mask)
    return confusion.compute()["miou"]


@pytest.mark.parametrize(
    ("family", "batch_size", "lr", "threshold"),
    [("segformer", 16, 5e-3, 0.8), ("mask2former", 8, 3e-3, 0.6)],
)
def test_tiny_model_learns_the_synthetic_shapes(
    tmp_path: Path, train_pairs, val_pairs, family: str, batch_size: int, lr: float, threshold: float
) -> None:
    config = TrainConfig(
        family=family, variant="tiny", resolution=(64, 64), batch_size=batch_size, steps=120,
        lr=lr, schedule="constant", warmup_steps=10, eval_interval=60, log_interval=20,
        pretrained="none", augmentations={"hflip": True}, seed=0,
    )
    recorder = Recorder()
    job = TrainingJob.create(config, train_pairs, val_pairs, CLASSES, tmp_path / "run", tmp_path / "artifact")
    outcome = run_training(job, callbacks=recorder)
    result = outcome.result
    assert result.status == "completed" and result.step == 120
    assert [s for s, _ in recorder.logs] == [20, 40, 60, 80, 100, 120]
    assert all(v["images_per_second"] > 0 and np.isfinite(v["loss"]) for _, v in recorder.logs)
    assert recorder.logs[-1][1]["loss"] < recorder.logs[0][1]["loss"]
    assert [s for s, _, _ in recorder.evals] == [60, 120]
    final_miou = recorder.evals[-1][1]["miou"]
    # The validation loss sits next to the training loss: finite, and well under the loss of
    # a uniform guess (ln of the number of labels) once the model has learned the shapes.
    val_losses = [m["val_loss"] for _, m, _ in recorder.evals]
    assert all(np.isfinite(v) and v > 0 for v in val_losses)
    assert val_losses[-1] < 0.5 * math.log(NUM_LABELS), val_losses
    assert result.best_metric >= threshold, f"{family} reached mIoU {result.best_metric:.3f}"
    assert result.best_metric == max(m["miou"] for _, m, _ in recorder.evals)
    samples = recorder.evals[-1][2]
    assert [s["index"] for s in samples] == [0, 1, 2, 3]
    assert [s["class_map"].shape for s in samples] == [val_pairs[i][1].shape for i in range(4)]

    # The artifact answers like the evaluation said: same preprocessing, same scores.
    model, meta = load_artifact(tmp_path / "artifact")
    assert meta["family"] == family and meta["resolution"] == [64, 64]
    assert [c["name"] for c in meta["classes"]] == ["background"] + [c["name"] for c in CLASSES]
    assert meta["metrics"]["miou"] == pytest.approx(result.best_metric)
    assert meta["run"]["best_step"] == result.best_step
    assert _miou(model, meta, val_pairs) == pytest.approx(result.best_metric, abs=1e-6)
    assert final_miou == recorder.evals[-1][1]["miou"]


@pytest.mark.parametrize("probabilities", [False, True])
def test_class_map_and_loss_is_the_pixel_cross_entropy_at_label_size(probabilities: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    scores = torch.rand(3, 4, 5, generator=generator) + (0.05 if probabilities else -0.5)
    labels = torch.randint(0, 3, (8, 10), generator=generator)
    labels[0, :4] = 255  # ignored pixels
    class_map, loss_sum, count = class_map_and_loss(scores, labels, probabilities=probabilities)
    up = torch.nn.functional.interpolate(scores[None], size=(8, 10), mode="bilinear", align_corners=False)
    log_p = torch.log(up / up.sum(1, keepdim=True)) if probabilities else up.log_softmax(1)
    keep = labels != 255
    expected = -log_p[0].permute(1, 2, 0)[keep].gather(1, labels[keep][:, None]).sum()
    assert count == 80 - 4
    assert loss_sum == pytest.approx(float(expected), rel=1e-5)
    assert np.array_equal(class_map, up[0].argmax(0).numpy().astype(np.uint8))


def _small_setup(tmp: Path, seed: int, **overrides):
    config = TrainConfig(**{
        "family": "segformer", "variant": "tiny", "resolution": (32, 32), "batch_size": 4, "steps": 24,
        "lr": 2e-3, "schedule": "cosine", "warmup_steps": 3, "eval_interval": 12, "log_interval": 1,
        "checkpoint_every_n_steps": 12, "keep_last_k": 5, "pretrained": "none", "seed": 0,
        "augmentations": {"hflip": True, "scale_crop": True, "rotate": True, "color_jitter": True},
        **overrides,
    })
    train, val = make_datasets(config, pairs(30, seed=5, sizes=((48, 48),)), pairs(6, seed=6, sizes=((40, 40),)))
    set_seed(seed)
    model = build_model(get_spec("segformer", "tiny"), NUM_LABELS, "none")
    return config, model, train, val


def test_resume_continues_at_the_next_step_like_an_uninterrupted_run(tmp_path: Path) -> None:
    config, model, train, val = _small_setup(tmp_path, seed=0)
    full = Recorder()
    result = Trainer(config, model, train, val, tmp_path / "a", full).fit()
    assert result.status == "completed"
    checkpoint = tmp_path / "a" / "checkpoints" / "step-000012"
    assert checkpoint.is_dir()  # 30 images / batch 4 = 7 steps an epoch: step 12 is mid-epoch
    reference = {k: v.clone() for k, v in model.state_dict().items()}

    # A different random init proves the weights come from the checkpoint.
    config_b, model_b, train_b, val_b = _small_setup(tmp_path, seed=123)
    resumed = Recorder()
    result_b = Trainer(config_b, model_b, train_b, val_b, tmp_path / "b", resumed).fit(resume_from=checkpoint)
    assert result_b.status == "completed" and result_b.step == 24
    assert [s for s, _ in resumed.logs] == list(range(13, 25))
    for (step_a, a), (step_b, b) in zip(full.logs[12:], resumed.logs, strict=True):
        assert step_a == step_b
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4, abs=1e-6)
        assert b["lr"] == pytest.approx(a["lr"])
    for key, value in model_b.state_dict().items():
        torch.testing.assert_close(value, reference[key], rtol=1e-4, atol=1e-5)
    assert resumed.evals[-1][1]["miou"] == pytest.approx(full.evals[-1][1]["miou"], abs=1e-4)
    saved = json.loads((tmp_path / "b" / "config.json").read_text())
    assert saved["steps"] == 24 and saved["resolution"] == [32, 32]


def test_should_stop_stops_within_one_step(tmp_path: Path) -> None:
    config, model, train, val = _small_setup(tmp_path, seed=0, steps=50)
    recorder = Recorder(stop_after_step=5)
    result = Trainer(config, model, train, val, tmp_path / "run", recorder).fit()
    assert result.status == "cancelled"
    assert result.step == 5
    assert recorder.logs[-1][0] == 5
    assert recorder.asked == 6  # asked before each of steps 1..6; the 6th never ran
    assert not list((tmp_path / "run" / "checkpoints").glob("step-*"))


def test_checkpoint_rotation_keeps_best_and_last_k(tmp_path: Path) -> None:
    config, model, train, val = _small_setup(
        tmp_path, seed=0, steps=16, checkpoint_every_n_steps=2, keep_last_k=2, eval_interval=4,
    )
    recorder = Recorder()
    result = Trainer(config, model, train, val, tmp_path / "run", recorder).fit()
    on_disk = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    best = f"step-{result.best_step:06d}"
    assert set(on_disk) == {best, "step-000014", "step-000016"}
    assert result.best_checkpoint.name == best and result.last_checkpoint.name == "step-000016"
    assert [s for s, _ in recorder.checkpoints] == [2, 4, 6, 8, 10, 12, 14, 16]
    ckpt = tmp_path / "run" / "checkpoints" / "step-000016"
    for name in ("model.safetensors", "optimizer.pt", "scheduler.pt", "rng-0.pt",
                 "trainer_state.json", "config.json"):
        assert (ckpt / name).is_file(), name
    assert json.loads((ckpt / "trainer_state.json").read_text())["step"] == 16
    assert not list((tmp_path / "run" / "checkpoints").glob(".tmp-*"))


def test_early_stopping_after_patience_evaluations_without_improvement(tmp_path: Path) -> None:
    # lr so small that the metric cannot move: the 2nd evaluation does not improve.
    config, model, train, val = _small_setup(
        tmp_path, seed=0, steps=40, lr=1e-12, eval_interval=3, early_stopping_patience=1,
        checkpoint_every_n_steps=0,
    )
    recorder = Recorder()
    result = Trainer(config, model, train, val, tmp_path / "run", recorder).fit()
    assert result.status == "early_stopped"
    assert result.step == 6 and result.best_step == 3
    assert [s for s, _, _ in recorder.evals] == [3, 6]
