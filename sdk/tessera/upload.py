"""Uploading a folder: parallel, resumable (files whose SHA-256 the project already has
are skipped before anything is sent), with a progress callback."""
from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tessera.errors import ValidationError
from tessera.models import Asset

if TYPE_CHECKING:
    from tessera.client import Client

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"}


@dataclass
class UploadProgress:
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int


@dataclass
class UploadReport:
    """``created``: new assets; ``skipped``: files the project already had (by hash, not
    sent); ``duplicates``: files the server found it already had; ``videos``: videos
    accepted (frames are extracted in the background); ``errors``: files refused."""

    created: list[Asset] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    videos: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"created": [a.to_dict() for a in self.created], "skipped": self.skipped,
                "duplicates": self.duplicates, "videos": self.videos, "errors": self.errors}


def media_files(folder: Path, recursive: bool = True) -> list[Path]:
    """Images and videos under ``folder`` (sorted, hidden files left out)."""
    pattern = folder.rglob("*") if recursive else folder.glob("*")
    return sorted(p for p in pattern if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _batches(paths: list[Path], max_files: int, max_bytes: int) -> Iterable[list[Path]]:
    batch: list[Path] = []
    size = 0
    for path in paths:
        n = path.stat().st_size
        if batch and (len(batch) >= max_files or size + n > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(path)
        size += n
    if batch:
        yield batch


def upload_paths(client: Client, project_id: int, paths: list[Path], *, workers: int = 4,
                 batch_files: int = 8, batch_bytes: int = 32 << 20, skip_existing: bool = True,
                 progress: Callable[[UploadProgress], None] | None = None) -> UploadReport:
    report = UploadReport()
    if skip_existing and paths:
        known = {a.sha256 for a in client.assets.list(project_id)}
        with ThreadPoolExecutor(max_workers=workers) as pool:
            hashes = list(pool.map(sha256_file, paths))
        report.skipped = [str(p) for p, h in zip(paths, hashes, strict=True) if h in known]
        paths = [p for p, h in zip(paths, hashes, strict=True) if h not in known]
    state = UploadProgress(0, len(paths), 0, sum(p.stat().st_size for p in paths))
    if progress:
        progress(state)

    def send(batch: list[Path]) -> dict[str, Any]:
        files = [("files", (p.name, p.read_bytes(),
                            mimetypes.guess_type(p.name)[0] or "application/octet-stream"))
                 for p in batch]
        try:
            return client._transport.json("POST", f"projects/{project_id}/assets/", files=files)
        except ValidationError as exc:  # every file of the batch refused: a report, not a failure
            if isinstance(exc.details, dict) and "errors" in exc.details:
                return exc.details
            raise

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(send, b): b for b in _batches(paths, batch_files, batch_bytes)}
        for future in as_completed(futures):
            body = future.result()
            report.created += [Asset.from_api(a) for a in body.get("created", [])]
            report.duplicates += body.get("duplicates", [])
            report.videos += body.get("videos", [])
            report.errors += body.get("errors", [])
            batch = futures[future]
            state.files_done += len(batch)
            state.bytes_done += sum(p.stat().st_size for p in batch)
            if progress:
                progress(state)
    report.created.sort(key=lambda a: a.id)
    return report
