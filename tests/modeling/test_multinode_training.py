"""Two nodes, one training: two launcher processes (as two gpu workers would be), each a
"node" with one CPU rank (gloo), meet through c10d rendezvous at the leader's endpoint and
train one run together. Their losses equal those of one node running two processes."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from config.embedded import free_port
from tests.conftest import ROOT
from training.modeling.config import TrainingJob
from training.modeling.distributed import run_training_distributed

from .conftest import CLASSES
from .test_distributed_training import _config, job_processes
from .test_trainer import Recorder

DATA = "[(s.image, s.semantic) for s in make_dataset({count}, seed={seed}, sizes=[(64, 64)])]"


def _small_config():
    return _config(steps=12, eval_interval=12, log_interval=4, checkpoint_every_n_steps=12, batch_size=4,
                   warmup_steps=2)


def _node_script(out: Path, run: Path, endpoint: str, leader: bool) -> str:
    return textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(ROOT)!r})
        from projects.synthetic import make_dataset
        from training.modeling.config import TrainConfig, TrainingJob
        from training.modeling.distributed import Rendezvous, run_training_distributed
        from training.modeling.trainer import TrainerCallbacks

        class Logs(TrainerCallbacks):
            logs = []
            def on_log(self, step, values):
                self.logs.append([step, values])

        config = TrainConfig.from_dict({_small_config().to_dict()!r})
        job = TrainingJob.create(config, {DATA.format(count=16, seed=2)}, {DATA.format(count=4, seed=3)},
                                 {CLASSES!r}, {str(run / 'run')!r}, {str(run / 'artifact')!r})
        rendezvous = Rendezvous(nodes=2, endpoint={endpoint!r}, run_id="multinode-test", leader={leader!r},
                                join_timeout_s=120)
        callbacks = Logs()
        outcome = run_training_distributed(job, num_processes=1, callbacks=callbacks, threads_per_process=1,
                                           rendezvous=rendezvous, keep_job_dir=True)
        with open({str(out)!r}, "w") as fh:
            json.dump({{"outcome": outcome is not None, "logs": callbacks.logs,
                       "step": outcome.result.step if outcome else None}}, fh)
    """)


def test_two_nodes_train_one_run_like_one_node_with_two_processes(tmp_path: Path) -> None:
    from projects.synthetic import make_dataset

    endpoint = f"127.0.0.1:{free_port()}"
    nodes = []
    for i in range(2):
        script = _node_script(tmp_path / f"node-{i}.json", tmp_path / f"node-{i}", endpoint, leader=i == 0)
        nodes.append(subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT))
    outputs = [node.communicate(timeout=600)[0].decode(errors="replace") for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(o[-3000:] for o in outputs)

    reports = [json.loads((tmp_path / f"node-{i}.json").read_text()) for i in range(2)]
    assert sorted(r["outcome"] for r in reports) == [False, True]  # one node held global rank 0
    reporter = next(r for r in reports if r["outcome"])
    assert reporter["step"] == 12
    ranks = sorted(json.loads(p.read_text())["rank"] for p in tmp_path.glob("node-*/run/job/rank-*.json"))
    worlds = {json.loads(p.read_text())["world_size"] for p in tmp_path.glob("node-*/run/job/rank-*.json")}
    assert ranks == [0, 1] and worlds == {2}  # one process group over both nodes

    # The same run on one node with two processes.
    data = lambda count, seed: [(s.image, s.semantic) for s in make_dataset(count, seed=seed, sizes=[(64, 64)])]  # noqa: E731
    one_node = Recorder()
    run_training_distributed(TrainingJob.create(_small_config(), data(16, 2), data(4, 3), CLASSES,
                                                tmp_path / "one" / "run", tmp_path / "one" / "artifact"),
                             num_processes=2, callbacks=one_node, threads_per_process=1)
    assert [s for s, _ in reporter["logs"]] == [s for s, _ in one_node.logs] == [4, 8, 12]
    for (_, two_nodes), (_, single) in zip(reporter["logs"], one_node.logs, strict=True):
        assert two_nodes["processes"] == single["processes"] == 2
        assert two_nodes["loss"] == pytest.approx(single["loss"], rel=1e-4, abs=1e-6)
    assert not job_processes(str(tmp_path / "node-0")) and not job_processes(str(tmp_path / "node-1"))
