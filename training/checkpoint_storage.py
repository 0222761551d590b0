"""Checkpoints in storage: every checkpoint the trainer writes on the GPU worker's disk is
copied to the default storage, so that a run whose worker died resumes on any other
worker (its own disk starts empty). A checkpoint folder is flat; trainer_state.json is
copied last and marks a complete copy. Runs in the GPU worker."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage

from training.modeling.checkpoints import (
    CHECKPOINTS_DIR,
    STATE_FILE,
    checkpoint_step,
    latest_checkpoint,
)
from training.models import Checkpoint, TrainingRun


def checkpoint_storage_prefix(*, run: TrainingRun, name: str) -> str:
    return f"checkpoints/{run.project_id}/{run.pk}-{run.key.hex}/{name}/"


def checkpoint_upload(*, run: TrainingRun, path: Path) -> None:
    prefix = checkpoint_storage_prefix(run=run, name=path.name)
    files = sorted((p for p in path.iterdir() if p.is_file()), key=lambda p: p.name == STATE_FILE)
    for file in files:
        name = prefix + file.name
        if default_storage.exists(name):
            default_storage.delete(name)
        with open(file, "rb") as fh:
            default_storage.save(name, File(fh))


def checkpoint_storage_delete(*, run: TrainingRun, name: str) -> None:
    prefix = checkpoint_storage_prefix(run=run, name=name)
    try:
        _, files = default_storage.listdir(prefix)
    except FileNotFoundError:
        return
    for file in sorted(files, key=lambda f: f != STATE_FILE):  # the completion mark first
        default_storage.delete(prefix + file)


def _checkpoint_download(run: TrainingRun, name: str, checkpoints_dir: Path) -> Path | None:
    prefix = checkpoint_storage_prefix(run=run, name=name)
    target = checkpoints_dir / name
    if target.is_dir() or not default_storage.exists(prefix + STATE_FILE):
        return target if target.is_dir() else None
    tmp = checkpoints_dir / f".download-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _, files = default_storage.listdir(prefix)
    for file in files:
        with default_storage.open(prefix + file, "rb") as src, open(tmp / file, "wb") as dst:
            shutil.copyfileobj(src, dst)
    tmp.rename(target)
    return target


def checkpoints_fetch(*, run: TrainingRun, directory: Path) -> Path | None:
    """The run's newest checkpoint, from this worker's disk or else copied down from storage
    together with the ones the trainer still tracks (the best among them); None: none yet."""
    local = latest_checkpoint(directory)
    newest = Checkpoint.objects.filter(run=run).order_by("-step").first()
    if newest is None or (local is not None and checkpoint_step(local.name) >= newest.step):
        return local
    checkpoints_dir = directory / CHECKPOINTS_DIR
    fetched = _checkpoint_download(run, Path(newest.path).name, checkpoints_dir)
    if fetched is None:
        return local
    state = json.loads((fetched / STATE_FILE).read_text())
    for name in {*(state.get("checkpoints") or []), state.get("best_checkpoint")} - {None, fetched.name}:
        _checkpoint_download(run, name, checkpoints_dir)
    return fetched


