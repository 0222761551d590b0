"""training.modeling.distributed: one training on 2 DDP processes started by torchrun.

No GPU here: the ranks are CPU processes on the gloo backend (accelerate's MULTI_CPU),
one torch thread each. Budget (shared 2-core build machine):
  tiny SegFormer, 2 ranks x 8 images, 120 steps at 64x64 -> val mIoU >= 0.75 (~0.90 seen), ~30 s
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, wait_until
from training.modeling.artifact import load_artifact
from training.modeling.config import TrainConfig, TrainingJob
from training.modeling.distributed import DistributedTrainingError, run_training_distributed

from .conftest import CLASSES, pairs
from .test_trainer import Recorder, _miou


def job_processes(marker: str) -> list[int]:
    """Pids of live processes whose command line holds ``marker`` (torchrun and ranks)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def _config(**overrides) -> TrainConfig:
    return TrainConfig(**{
        "family": "segformer", "variant": "tiny", "resolution": (64, 64), "batch_size": 8, "steps": 120,
        "lr": 5e-3, "schedule": "constant", "warmup_steps": 5, "eval_interval": 60, "log_interval": 20,
        "pretrained": "none", "augmentations": {"hflip": True}, "seed": 0, "num_gpus": 2, **overrides,
    })


class OrderRecorder(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.order: list[tuple[str, int]] = []

    def on_log(self, step, values):
        super().on_log(step, values)
        self.order.append(("log", step))

    def on_eval(self, step, metrics, samples):
        super().on_eval(step, metrics, samples)
        self.order.append(("eval", step))

    def on_checkpoint(self, step, path, metrics):
        super().on_checkpoint(step, path, metrics)
        self.order.append(("checkpoint", step))


def test_two_processes_train_together_and_report_to_the_parent(tmp_path: Path) -> None:
    train, val = pairs(64, seed=0), pairs(16, seed=1, sizes=((64, 64), (80, 72)))
    recorder = OrderRecorder()
    job = TrainingJob.create(_config(), train, val, CLASSES, tmp_path / "run", tmp_path / "artifact",
                             run_info={"run_id": 7})
    outcome = run_training_distributed(job, num_processes=2, callbacks=recorder, threads_per_process=1,
                                       keep_job_dir=True)

    # Two ranks of one gloo process group, as accelerate saw them.
    job = tmp_path / "run" / "job"
    ranks = [json.loads((job / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [(r["rank"], r["world_size"]) for r in ranks] == [(0, 2), (1, 2)]
    assert {r["backend"] for r in ranks} == {"gloo"} and ranks[0]["pid"] != ranks[1]["pid"]
    assert all(r["distributed_type"] == "DistributedType.MULTI_CPU" and r["threads"] == 1 for r in ranks)

    # Callbacks arrived in the parent in the Trainer's order, with the world's numbers.
    assert recorder.order == [("log", 20), ("log", 40), ("log", 60), ("eval", 60), ("checkpoint", 60),
                              ("log", 80), ("log", 100), ("log", 120), ("eval", 120), ("checkpoint", 120)]
    assert all(v["processes"] == 2 and v["epoch"] == step / 4 for step, v in recorder.logs)  # 64 / (2 x 8)
    assert recorder.logs[-1][1]["loss"] < recorder.logs[0][1]["loss"]
    step, metrics, samples = recorder.evals[-1]
    assert np.asarray(metrics["confusion"]).sum() == sum(int((m != 255).sum()) for _, m in val)  # each once
    assert [s["index"] for s in samples] == [0, 1, 2, 3]
    assert [s["class_map"].shape for s in samples] == [val[i][1].shape for i in range(4)]
    assert all(s["class_map"].dtype == np.uint8 for s in samples)
    assert [p for _, p in recorder.checkpoints] == [tmp_path / "run" / "checkpoints" / "step-000060",
                                                    tmp_path / "run" / "checkpoints" / "step-000120"]

    result = outcome.result
    assert result.status == "completed" and result.step == 120
    assert result.best_metric >= 0.75, f"reached mIoU {result.best_metric:.3f}"
    assert result.best_checkpoint == tmp_path / "run" / "checkpoints" / f"step-{result.best_step:06d}"
    assert (result.best_checkpoint / "rng-1.pt").is_file()  # each rank saved its RNG state

    # The artifact (written by rank 0) scores like the evaluation said.
    assert outcome.artifact_dir == tmp_path / "artifact"
    model, meta = load_artifact(outcome.artifact_dir)
    assert meta == outcome.meta and meta["run"]["processes"] == 2 and meta["run"]["run_id"] == 7
    assert _miou(model, meta, val) == pytest.approx(result.best_metric, abs=1e-6)
    assert not job_processes(str(job))


def test_a_failing_rank_is_reported_with_its_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "step-000010"
    with pytest.raises(DistributedTrainingError) as info:
        job = TrainingJob.create(_config(steps=4, warmup_steps=0), pairs(8, seed=0), pairs(2, seed=1), CLASSES,
                                 tmp_path / "run", tmp_path / "artifact", resume_from=missing)
        run_training_distributed(job, num_processes=2, threads_per_process=1)
    message = str(info.value)
    assert "The training processes failed (" in message and "nowhere" in message
    assert "Last lines of rank" in message and "load_checkpoint" in message  # the rank's traceback
    assert not job_processes(str(tmp_path / "run" / "job"))


def test_a_two_process_run_resumes_from_its_checkpoint_like_an_uninterrupted_run(tmp_path: Path) -> None:
    config = _config(steps=16, eval_interval=8, log_interval=4, checkpoint_every_n_steps=8, keep_last_k=3,
                     batch_size=4, warmup_steps=2)
    train, val = pairs(32, seed=2), pairs(4, seed=3)
    full, resumed = Recorder(), Recorder()
    run_training_distributed(TrainingJob.create(config, train, val, CLASSES, tmp_path / "a", tmp_path / "a-artifact"),
                             num_processes=2, callbacks=full, threads_per_process=1)
    checkpoint = tmp_path / "a" / "checkpoints" / "step-000008"
    assert sorted(p.name for p in checkpoint.glob("rng-*.pt")) == ["rng-0.pt", "rng-1.pt"]
    job = TrainingJob.create(config, train, val, CLASSES, tmp_path / "b", tmp_path / "b-artifact",
                             resume_from=checkpoint)
    outcome = run_training_distributed(job, num_processes=2, callbacks=resumed, threads_per_process=1)
    assert outcome.result.status == "completed" and outcome.result.step == 16
    assert [s for s, _ in full.logs] == [4, 8, 12, 16] and [s for s, _ in resumed.logs] == [12, 16]
    for (_, a), (_, b) in zip(full.logs[2:], resumed.logs, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4, abs=1e-6)
    assert resumed.evals[-1][1]["miou"] == pytest.approx(full.evals[-1][1]["miou"], abs=1e-4)


def test_the_ranks_die_with_the_launching_process(tmp_path: Path) -> None:
    """A worker killed outright (SIGKILL, no finally) takes torchrun and the ranks along."""
    config = _config(steps=100000, eval_interval=100000, log_interval=2).to_dict()
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from projects.synthetic import make_dataset
        from training.modeling.distributed import run_training_distributed
        from training.modeling.config import TrainConfig, TrainingJob
        config = TrainConfig.from_dict({config!r})
        data = [(s.image, s.semantic) for s in make_dataset(18, seed=0, sizes=[(64, 64)])]
        job = TrainingJob.create(config, data[:16], data[16:], {CLASSES!r}, {str(tmp_path / 'run')!r},
                                 {str(tmp_path / 'artifact')!r})
        run_training_distributed(job, num_processes=2, threads_per_process=1)
    """)
    launcher = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, start_new_session=True)
    job = tmp_path / "run" / "job"
    try:
        wait_until(lambda: (job / "events.jsonl").exists(), timeout=120, interval=0.5)  # training
        assert len(job_processes(str(job))) == 3  # torchrun + 2 ranks
    finally:
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait(timeout=10)
    started = time.monotonic()
    wait_until(lambda: not job_processes(str(job)), timeout=60, interval=0.5)
    assert time.monotonic() - started < 60
