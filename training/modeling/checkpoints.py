"""Checkpoints of a training output folder: their names (no torch at import: the web
process reads them too), and writing, loading and pruning them for the ``Trainer``.

A checkpoint (``<output_dir>/checkpoints/step-000200/``) holds the model's state dict
(its own parameter names), the optimizer/scheduler/scaler state dicts, every rank's RNG
states, the trainer state (``trainer_state.json``, written last: a folder with it is
complete) and the resolved config. Restoring all of it continues a run with the same data
order and augmentations as an uninterrupted one.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where used (see above)
    from accelerate import Accelerator
    from torch import nn

CHECKPOINTS_DIR = "checkpoints"
MODEL_WEIGHTS = "model.safetensors"
STATE_FILE = "trainer_state.json"  # written last: a checkpoint folder with it is complete
CONFIG_FILE = "config.json"


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def checkpoint_step(name: str) -> int:
    """The step of a checkpoint folder name (``step-000200`` -> 200)."""
    return int(name.split("-")[1])


@dataclass
class TrainerState:
    """What ``trainer_state.json`` holds: the step, the best metric so far and the
    checkpoints kept (names, oldest first)."""

    step: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    best_metrics: dict[str, Any] | None = None
    evals_without_improvement: int = 0
    last_metrics: dict[str, Any] | None = None
    checkpoints: list[str] = field(default_factory=list)
    best_checkpoint: str | None = None


def write_config(directory: Path, config: dict[str, Any]) -> None:
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True))


def _capture_rng() -> dict[str, Any]:
    import numpy as np
    import torch

    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(checkpoints_dir: Path, *, accelerator: Accelerator, model: nn.Module,
                    optimizer: Any, scheduler: Any, state: TrainerState, config: dict[str, Any],
                    keep_last_k: int) -> Path:
    """Write a checkpoint of ``state.step`` (atomically; rank 0 writes every rank's RNG state) and
    prune old ones (``prune_checkpoints``); ``state.checkpoints`` is updated. Every rank
    calls it."""
    import torch
    from accelerate.utils import gather_object
    from safetensors.torch import save_model

    acc = accelerator
    final = checkpoints_dir / checkpoint_name(state.step)
    tmp = checkpoints_dir / f".tmp-{checkpoint_name(state.step)}"
    acc.wait_for_everyone()
    if acc.is_main_process:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    # Every rank's RNG state, written by rank 0: a checkpoint is whole on rank 0's disk
    # even when the ranks run on several machines (distributed.Rendezvous).
    rng_states = gather_object([_capture_rng()]) if acc.num_processes > 1 else [_capture_rng()]
    if acc.is_main_process:
        for rank, rng_state in enumerate(rng_states):
            torch.save(rng_state, tmp / f"rng-{rank}.pt")
        # The live module's own parameter names (save_pretrained would rewrite them to
        # the published checkpoint layout); artifacts are written with save_pretrained.
        save_model(acc.unwrap_model(model), str(tmp / MODEL_WEIGHTS))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        if acc.scaler is not None:
            torch.save(acc.scaler.state_dict(), tmp / "scaler.pt")
        name = final.name
        if name not in state.checkpoints:
            state.checkpoints.append(name)
        (tmp / STATE_FILE).write_text(json.dumps(asdict(state), indent=2, default=str))
        write_config(tmp, config)
    acc.wait_for_everyone()
    if acc.is_main_process:
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        prune_checkpoints(checkpoints_dir, state, keep_last_k)
    acc.wait_for_everyone()
    return final


def prune_checkpoints(checkpoints_dir: Path, state: TrainerState, keep_last_k: int) -> None:
    """Delete the checkpoints beyond the last ``keep_last_k`` and the best one (never all)."""
    keep = set(state.checkpoints[-keep_last_k:] if keep_last_k else [])
    if state.best_checkpoint:
        keep.add(state.best_checkpoint)
    if not keep and state.checkpoints:
        keep.add(state.checkpoints[-1])  # never delete every checkpoint
    for name in list(state.checkpoints):
        if name not in keep:
            shutil.rmtree(checkpoints_dir / name, ignore_errors=True)
            state.checkpoints.remove(name)


def load_checkpoint(path: str | Path, *, accelerator: Accelerator, model: nn.Module,
                    optimizer: Any, scheduler: Any, checkpoints_dir: Path) -> TrainerState:
    """Restore model, optimizer, scheduler, scaler and this rank's RNG from ``path``;
    returns its trainer state (tracking only the checkpoints present in ``checkpoints_dir``)."""
    import torch
    from safetensors.torch import load_model

    path = Path(path)
    acc = accelerator
    unwrapped = acc.unwrap_model(model)
    # safetensors and torch.load take "cpu" but not accelerate's "cpu:0" (MULTI_CPU's device)
    device = "cpu" if acc.device.type == "cpu" else str(acc.device)
    load_model(unwrapped, str(path / MODEL_WEIGHTS), strict=True, device=device)
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location=device, weights_only=False))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
    if acc.scaler is not None and (path / "scaler.pt").exists():
        acc.scaler.load_state_dict(torch.load(path / "scaler.pt", weights_only=False))
    rng_file = path / f"rng-{acc.process_index}.pt"
    if rng_file.exists():
        _restore_rng(torch.load(rng_file, weights_only=False))
    state = TrainerState(**json.loads((path / STATE_FILE).read_text()))
    # checkpoints of the run being resumed live in another output_dir when resuming
    # elsewhere; only track the ones that exist here.
    state.checkpoints = [c for c in state.checkpoints if (checkpoints_dir / c).exists()]
    if state.best_checkpoint and not (checkpoints_dir / state.best_checkpoint).exists():
        state.best_checkpoint = None
    return state


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete ``checkpoints/step-*`` directory under ``output_dir``, or None."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return None
    done = [p for p in root.glob("step-*") if (p / STATE_FILE).is_file()]
    return max(done, key=lambda p: checkpoint_step(p.name)) if done else None


def load_checkpoint_weights(model: nn.Module, checkpoint: str | Path) -> nn.Module:
    """Load a checkpoint's model weights into ``model`` (same architecture); returns it."""
    from safetensors.torch import load_model

    load_model(model, str(Path(checkpoint) / MODEL_WEIGHTS), strict=True)
    return model
