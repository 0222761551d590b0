"""One training on several processes: torchrun starts them, accelerate runs DDP (no Django).

``run_training_distributed(job, num_processes=N)`` takes the same ``TrainingJob`` as
``pipeline.run_training`` and returns the same ``TrainingOutcome``. It writes a job folder
and starts ``python -m torch.distributed.run --standalone --nproc_per_node N -m
training.modeling.distributed <job_dir>``; every rank runs ``run_training`` on the job
(``Trainer`` shards the data per rank, reduces the confusion matrices and writes
checkpoints from rank 0). On CUDA each rank takes the GPU of its ``LOCAL_RANK`` (NCCL);
without CUDA the ranks are CPU processes on the gloo backend (accelerate's MULTI_CPU,
switched on with ``ACCELERATE_USE_CPU``).

Job folder (``<output_dir>/job``, rebuilt for every launch)::

    job.json           config, classes, paths, resume_from, run_info, threads, launcher pid
    data.npz           train/val images (H, W, 3) and masks (H, W), uint8
    events.jsonl       rank 0's callbacks, one JSON object a line (the parent replays them)
    samples/           the class maps of on_eval's sample predictions (.npy)
    rank-<r>.json      what each rank saw: rank, world size, device, backend, pid
    error-rank-<r>.json  the exception of a rank that failed
    outcome.json       rank 0's result (TrainResult, artifact meta, artifact dir)
    cancel             created by the parent to stop the run (rank 0's should_stop)
    output.log         torchrun's and the ranks' stdout/stderr

Several nodes (``rendezvous=Rendezvous(...)``): each node's launcher starts torchrun with
``--nnodes N`` and c10d rendezvous at the leader's endpoint (the leader's torchrun serves
the store, ``is_host``); together they form one process group of N x M ranks. Each node
writes its own job folder; the node whose ranks include global rank 0 gets the events and
``outcome.json`` (the others return None). Cancelling at rank 0 stops every rank: the
Trainer all-reduces the stop flag.

The parent replays the events into ``callbacks`` (on_log / on_eval / on_checkpoint in
the order rank 0 made them) and polls ``callbacks.should_stop()``; the ranks stop
together within a step after ``cancel`` appears (the Trainer all-reduces the flag).
Processes: torchrun runs in its own session and receives SIGTERM when the launching
thread dies (Linux ``PR_SET_PDEATHSIG``); each rank receives SIGKILL when torchrun dies;
the parent terminates torchrun (which stops the ranks) whenever it leaves early.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # imported where used: the torchrun wrapper must start fast
    from .config import TrainingJob
    from .pipeline import TrainingOutcome
    from .trainer import TrainerCallbacks, TrainResult

JOB_DIR = "job"
REPO_ROOT = Path(__file__).resolve().parents[2]
_PR_SET_PDEATHSIG = 1


class DistributedTrainingError(RuntimeError):
    """The training processes failed; the message holds their error and last output lines."""


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _write_json(path: Path, data: Any) -> None:
    """Write atomically: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_to_jsonable(data)))
    tmp.replace(path)


def default_threads_per_process(num_processes: int) -> int:
    """CPU threads per rank so that N ranks share the cores without oversubscribing them."""
    return max(1, (os.cpu_count() or 1) // max(1, num_processes))


# --- the parent side ----------------------------------------------------------------
def write_job(job_dir: Path, job: TrainingJob, *, threads_per_process: int = 1) -> None:
    """Write everything the ranks need into a fresh ``job_dir``."""
    if job_dir.exists():
        shutil.rmtree(job_dir)
    (job_dir / "samples").mkdir(parents=True)
    arrays: dict[str, np.ndarray] = {}
    for split, pairs in (("train", job.train_pairs), ("val", job.val_pairs)):
        for i, (image, mask) in enumerate(pairs):
            arrays[f"{split}_image_{i}"] = np.ascontiguousarray(image, dtype=np.uint8)
            arrays[f"{split}_mask_{i}"] = np.ascontiguousarray(mask, dtype=np.uint8)
    np.savez(job_dir / "data.npz", **arrays)
    _write_json(job_dir / "job.json", {
        "config": job.config.to_dict(),
        "train": len(job.train_pairs),
        "val": len(job.val_pairs),
        "classes": list(job.classes),
        "output_dir": str(job.output_dir),
        "artifact_dir": str(job.artifact_dir),
        "weights_dir": str(job.weights_dir) if job.weights_dir is not None else None,
        "resume_from": str(job.resume_from) if job.resume_from is not None else None,
        "allow_download": job.allow_download,
        "run_info": job.run_info,
        "threads": threads_per_process,
        "launcher_pid": os.getpid(),
    })


def _read_job(job_dir: Path) -> tuple[TrainingJob, dict[str, Any]]:
    """The job ``write_job`` wrote (validated by the launcher: not again) and job.json."""
    from .config import TrainConfig, TrainingJob

    data = json.loads((job_dir / "job.json").read_text())
    with np.load(job_dir / "data.npz") as arrays:
        pairs = {split: [(arrays[f"{split}_image_{i}"], arrays[f"{split}_mask_{i}"])
                         for i in range(data[split])] for split in ("train", "val")}
    job = TrainingJob(
        config=TrainConfig.from_dict(data["config"]), train_pairs=pairs["train"],
        val_pairs=pairs["val"], classes=data["classes"], output_dir=Path(data["output_dir"]),
        artifact_dir=Path(data["artifact_dir"]),
        weights_dir=Path(data["weights_dir"]) if data["weights_dir"] is not None else None,
        resume_from=data["resume_from"], allow_download=data["allow_download"],
        run_info=data["run_info"])
    return job, data


@dataclasses.dataclass(frozen=True)
class Rendezvous:
    """One torchrun job over ``nodes`` nodes: c10d rendezvous at ``endpoint`` ("host:port",
    served by the ``leader``'s torchrun), all nodes under the same ``run_id``."""

    nodes: int
    endpoint: str
    run_id: str
    leader: bool
    join_timeout_s: int = 600

    def torchrun_args(self) -> list[str]:
        return [f"--nnodes={self.nodes}", "--rdzv_backend=c10d", f"--rdzv_endpoint={self.endpoint}",
                f"--rdzv_id={self.run_id}",
                f"--rdzv_conf=is_host={str(self.leader).lower()},join_timeout={self.join_timeout_s}"]


def launch_command(job_dir: Path, num_processes: int, rendezvous: Rendezvous | None = None) -> list[str]:
    """torchrun (torch.distributed.run) on this node (alone, or one of ``rendezvous``'s),
    behind the small wrapper below that ties torchrun's life to the launching process."""
    command = [sys.executable, "-m", "training.modeling.distributed", "--torchrun", str(num_processes),
               str(job_dir)]
    return command + ([json.dumps(asdict(rendezvous))] if rendezvous else [])


def child_env(threads_per_process: int, base: dict[str, str] | None = None) -> dict[str, str]:
    import torch

    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["OMP_NUM_THREADS"] = str(threads_per_process)
    env["PYTHONUNBUFFERED"] = "1"
    if not torch.cuda.is_available():
        env["ACCELERATE_USE_CPU"] = "true"  # MULTI_CPU on gloo instead of N lone processes
    return env


class _EventReader:
    """Reads complete JSON lines appended to events.jsonl since the last call."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.partial = path, 0, b""

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read()
        self.offset += len(chunk)
        data = self.partial + chunk
        lines = data.split(b"\n")
        self.partial = lines.pop()
        return [json.loads(line) for line in lines if line.strip()]


def _replay(event: dict[str, Any], callbacks: TrainerCallbacks) -> None:
    kind, step = event["event"], int(event["step"])
    if kind == "log":
        callbacks.on_log(step, event["values"])
    elif kind == "eval":
        samples = [{"index": s["index"], "class_map": np.load(s["class_map"])} for s in event["samples"]]
        callbacks.on_eval(step, event["metrics"], samples)
    elif kind == "checkpoint":
        callbacks.on_checkpoint(step, Path(event["path"]), event["metrics"])


def _tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return ""
    with open(path, errors="replace") as fh:
        return "".join(deque(fh, maxlen=lines)).rstrip()


def _raise_child_failure(job_dir: Path, returncode: int) -> None:
    from .config import TrainConfigError
    from .registry import ModelRegistryError, WeightsNotFoundError

    errors = sorted(job_dir.glob("error-rank-*.json"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    error = json.loads(errors[0].read_text()) if errors else None
    if error and error["type"] == "TrainConfigError":
        raise TrainConfigError(error["problems"] or [error["message"]])
    if error and error["type"] == "WeightsNotFoundError":
        raise WeightsNotFoundError(error["message"])
    if error and error["type"] == "ModelRegistryError":
        raise ModelRegistryError(error["message"])
    if error:  # torchrun's own summary ends output.log: show the rank's traceback instead
        rank = errors[0].stem.rsplit("-", 1)[1]
        lines = error["traceback"].rstrip().splitlines()[-20:]
        raise DistributedTrainingError(
            f"The training processes failed ({error['type']}: {error['message']}). "
            f"Last lines of rank {rank}'s error output:\n" + "\n".join(lines))
    raise DistributedTrainingError(
        f"The training processes failed (exit code {returncode}). Last output lines:\n"
        f"{_tail(job_dir / 'output.log')}")


def _stop_process_tree(proc: subprocess.Popen, job_dir: Path, grace_s: float = 20.0) -> None:
    """SIGTERM torchrun (it stops its ranks), then SIGKILL its group and any rank of this
    job still alive (ranks run in sessions of their own)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    for info in job_dir.glob("rank-*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            pid = int(json.loads(info.read_text())["pid"])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if str(job_dir).encode() in cmdline:  # still this job's rank, not a reused pid
                os.kill(pid, signal.SIGKILL)


def _result_from(data: dict[str, Any]) -> TrainResult:
    from .trainer import TrainResult

    for key in ("best_checkpoint", "last_checkpoint"):
        if data.get(key) is not None:
            data[key] = Path(data[key])
    return TrainResult(**data)


def run_training_distributed(
    job: TrainingJob,
    *,
    num_processes: int,
    callbacks: TrainerCallbacks | None = None,
    threads_per_process: int | None = None,
    poll_s: float = 0.2,
    keep_job_dir: bool = False,
    rendezvous: Rendezvous | None = None,
) -> TrainingOutcome | None:
    """``run_training(job)`` on ``num_processes`` DDP processes started by torchrun (on
    each node of ``rendezvous`` when given: None on a node without global rank 0).

    Callbacks are called in this process, in rank 0's order, while the ranks train.
    Raises TrainConfigError when this machine has fewer GPUs than processes, what
    ``run_training`` raises for missing weights, and ``DistributedTrainingError`` (with
    the ranks' error and last output) when they fail.
    """
    import torch

    from .config import TrainConfigError
    from .pipeline import TrainingOutcome
    from .trainer import TrainerCallbacks

    if torch.cuda.is_available() and num_processes > torch.cuda.device_count():
        raise TrainConfigError([f"{num_processes} processes asked for, this machine has "
                                f"{torch.cuda.device_count()} GPUs"])
    callbacks = callbacks or TrainerCallbacks()
    threads = threads_per_process or default_threads_per_process(num_processes)
    job_dir = job.output_dir / JOB_DIR
    write_job(job_dir, job, threads_per_process=threads)
    reader = _EventReader(job_dir / "events.jsonl")
    with open(job_dir / "output.log", "wb") as log:
        proc = subprocess.Popen(launch_command(job_dir, num_processes, rendezvous), env=child_env(threads),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    succeeded = False
    try:
        cancel = job_dir / "cancel"
        while True:
            finished = proc.poll() is not None
            for event in reader.read():  # after poll(): nothing written before exit is missed
                _replay(event, callbacks)
            if finished:
                break
            if not cancel.exists() and callbacks.should_stop():
                cancel.touch()
            time.sleep(poll_s)
        if proc.returncode == 0 and rendezvous is not None and not (job_dir / "rank-0.json").exists():
            succeeded = True
            return None  # another node held rank 0: it has the outcome
        if proc.returncode != 0 or not (job_dir / "outcome.json").exists():
            _raise_child_failure(job_dir, proc.returncode)
        data = json.loads((job_dir / "outcome.json").read_text())
        outcome = TrainingOutcome(
            _result_from(data["result"]), data["meta"],
            Path(data["artifact_dir"]) if data["artifact_dir"] else None)
        succeeded = True
        return outcome
    finally:
        _stop_process_tree(proc, job_dir)
        if succeeded and not keep_job_dir:
            shutil.rmtree(job_dir, ignore_errors=True)


# --- the rank side --------------------------------------------------------------------
def _die_with_parent(sig: int) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), sig)


class _EventWriter:
    """Rank 0's TrainerCallbacks -> events.jsonl (+ .npy sample maps); stop when
    ``cancel`` appears or the launching process is gone."""

    def __init__(self, job_dir: Path, launcher_pid: int, processes: int) -> None:
        self.job_dir, self.launcher_pid, self.processes = job_dir, launcher_pid, processes
        self.path = job_dir / "events.jsonl"

    def _emit(self, event: dict[str, Any]) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(_to_jsonable(event)) + "\n")

    def on_log(self, step: int, values: dict[str, float]) -> None:
        self._emit({"event": "log", "step": step, "values": {**values, "processes": self.processes}})

    def on_eval(self, step: int, metrics: dict[str, Any], sample_predictions: list[dict[str, Any]]) -> None:
        samples = []
        for sample in sample_predictions:
            path = self.job_dir / "samples" / f"step-{step:06d}-{int(sample['index'])}.npy"
            np.save(path, np.asarray(sample["class_map"]))
            samples.append({"index": int(sample["index"]), "class_map": str(path)})
        self._emit({"event": "eval", "step": step, "metrics": metrics, "samples": samples})

    def on_checkpoint(self, step: int, path: Path, metrics: dict[str, Any] | None) -> None:
        self._emit({"event": "checkpoint", "step": step, "path": str(path), "metrics": metrics})

    def should_stop(self) -> bool:
        if (self.job_dir / "cancel").exists():
            return True
        try:
            os.kill(self.launcher_pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False


def rank_main(job_dir: Path) -> None:
    """What every rank runs (torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*)."""
    _die_with_parent(signal.SIGKILL)
    import torch
    from accelerate import PartialState

    from .pipeline import run_training

    rank = int(os.environ.get("RANK", "0"))
    try:
        job, data = _read_job(job_dir)
        torch.set_num_threads(int(data["threads"]))
        # The Trainer's Accelerator shares this state: the process group is set up once.
        # Without CUDA, accelerate needs cpu=True to see torchrun's ranks (MULTI_CPU, gloo).
        state = PartialState(cpu=not torch.cuda.is_available())
        _write_json(job_dir / f"rank-{rank}.json", {
            "rank": state.process_index, "world_size": state.num_processes,
            "local_rank": state.local_process_index, "device": str(state.device),
            "backend": state.backend, "distributed_type": str(state.distributed_type),
            "threads": torch.get_num_threads(), "pid": os.getpid()})
        expected = int(os.environ.get("WORLD_SIZE", "1"))
        if state.num_processes != expected:
            raise RuntimeError(f"accelerate sees {state.num_processes} processes, torchrun started {expected}")
        callbacks = (_EventWriter(job_dir, int(data["launcher_pid"]), state.num_processes)
                     if state.is_main_process else None)
        job = dataclasses.replace(job, run_info={**job.run_info, "processes": state.num_processes})
        outcome = run_training(job, callbacks=callbacks)
        if state.is_main_process:
            _write_json(job_dir / "outcome.json", {
                "result": asdict(outcome.result), "meta": outcome.meta,
                "artifact_dir": str(outcome.artifact_dir) if outcome.artifact_dir else None})
        state.wait_for_everyone()
    except BaseException as exc:
        _write_json(job_dir / f"error-rank-{rank}.json", {
            "type": type(exc).__name__, "message": str(exc),
            "problems": getattr(exc, "problems", None), "traceback": traceback.format_exc()})
        raise
    finally:
        if torch.distributed.is_initialized():
            with contextlib.suppress(Exception):
                torch.distributed.destroy_process_group()


def torchrun_main(num_processes: int, job_dir: Path, rendezvous: Rendezvous | None = None) -> None:
    """Become torchrun, after asking for SIGTERM when the launching process dies (torchrun
    then stops its ranks)."""
    _die_with_parent(signal.SIGTERM)
    nodes = rendezvous.torchrun_args() if rendezvous else ["--standalone"]
    args = [sys.executable, "-m", "torch.distributed.run", *nodes,
            f"--nproc_per_node={num_processes}", "-m", "training.modeling.distributed", str(job_dir)]
    os.execv(sys.executable, args)


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--torchrun":
        rendezvous = Rendezvous(**json.loads(argv[3])) if len(argv) > 3 else None
        torchrun_main(int(argv[1]), Path(argv[2]), rendezvous)
    else:
        rank_main(Path(argv[0]))


if __name__ == "__main__":
    main(sys.argv[1:])
