"""What every format reader produces and what every writer consumes, plus reading the
uploaded file (one JSON or a zip). Django-free: plain data in, plain data out.

Readers never touch the database: they turn files into an :class:`ParsedImport`
(images with their instances as checked RLE, classes, problems, skipped items). The
service then matches images to assets and writes everything in one transaction, or
nothing when any problem was found.
"""
from __future__ import annotations

import io
import json
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any

SPLITS = ("train", "val", "test")
_SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val",
                  "validation": "val", "test": "test", "testing": "test"}
_IGNORED_ENTRY = re.compile(r"(^|/)(__MACOSX|\.[^/]*)(/|$)")


@dataclass
class Problem:
    """One reason the import cannot go ahead. ``where``: file and item it concerns."""

    code: str
    message: str
    where: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "where": self.where}


# The class name readers give an ignore region (LabelMe's ``__ignore__``, VOC's 255,
# COCO crowd regions when asked); the import puts it in the project's ignore class.
IGNORE_CLASS = "__ignore__"
IGNORE_LABEL = 255  # its value in class maps and index PNGs


@dataclass
class ImportInstance:
    class_name: str  # IGNORE_CLASS for an ignore region
    rle: dict  # canonical {"size": [H, W], "counts": str}, size = the declared image size


@dataclass
class ImportImage:
    """An image named by a label file. ``data`` holds its bytes when the upload carried
    them (a zip entry, LabelMe imageData); otherwise it must match an existing asset."""

    file_name: str
    width: int
    height: int
    source: str
    instances: list[ImportInstance] = field(default_factory=list)
    data: bytes | None = None
    split: str | None = None
    # True when the file speaks for the whole image (a LabelMe file, a PNG mask): no
    # objects then means "labeled, nothing here". A COCO image without annotations
    # says nothing, and its asset is left as it is.
    complete: bool = False


@dataclass
class ParsedImport:
    images: list[ImportImage] = field(default_factory=list)
    classes: list[tuple[str, str | None]] = field(default_factory=list)  # (name, "#rrggbb"|None)
    problems: list[Problem] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    # Repairs made on the way (points clipped to the image, ...): the import goes ahead.
    warnings: list[dict[str, str]] = field(default_factory=list)

    def skip(self, where: str, reason: str) -> None:
        self.skipped.append({"where": where, "reason": reason})

    def warn(self, where: str, message: str) -> None:
        self.warnings.append({"where": where, "message": message})

    def problem(self, code: str, message: str, where: str = "") -> None:
        self.problems.append(Problem(code, message, where))

    def add_class(self, name: str, color: str | None = None) -> None:
        if name.lower() not in {n.lower() for n, _ in self.classes}:
            self.classes.append((name, color))


@dataclass
class ExportImage:
    """One image to write: its file name inside the archive's image folder, split,
    size, bytes (None to write labels only) and instances as (class index 0-based, rle)."""

    file_name: str
    width: int
    height: int
    split: str
    instances: list[tuple[int, dict]]
    data: bytes | None = None


@dataclass(frozen=True)
class ExportClass:
    index: int  # 0-based LabelClass.index; the PNG pixel value is index + 1
    name: str
    color: str
    ignore: bool = False  # the project's ignore class: PNG 255, LabelMe __ignore__

    @property
    def label(self) -> int:
        """Its value in a class map: index + 1, or 255 for the ignore class."""
        return IGNORE_LABEL if self.ignore else self.index + 1


class UploadError(ValueError):
    """The uploaded file cannot be read at all (not JSON, not a zip, too large)."""


def read_upload(name: str, data: bytes, *, max_total_bytes: int = 2 * 1024**3,
                max_entries: int = 200_000) -> dict[str, bytes]:
    """Return {path: bytes} for a zip (directories, ``__MACOSX`` and dot-files left out)
    or {name: bytes} for a single file. Guards against zip bombs by the declared sizes
    before reading anything."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        return {posixpath.basename(name.replace("\\", "/")) or "upload.json": data}
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in archive.infolist()
                 if not i.is_dir() and not _IGNORED_ENTRY.search(i.filename)]
        if len(infos) > max_entries:
            raise UploadError(f"The zip holds {len(infos)} files; the limit is {max_entries}.")
        total = sum(i.file_size for i in infos)
        if total > max_total_bytes:
            raise UploadError(f"The zip unpacks to {total} bytes; the limit is {max_total_bytes}.")
        files: dict[str, bytes] = {}
        for info in infos:
            path = posixpath.normpath(info.filename.replace("\\", "/")).lstrip("/")
            files[path] = archive.read(info)
        return files
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError) as exc:
        raise UploadError(f"The zip cannot be read: {exc}.") from None


def load_json(data: bytes, where: str, parsed: ParsedImport) -> Any:
    """Parse JSON, recording a problem (and returning None) when it is not valid."""
    try:
        return json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        parsed.problem("bad_json", f"Not valid JSON: {exc}.", where)
        return None


def split_from_path(path: str) -> str | None:
    """The split a path names: a folder or file-name token train/val/test (and aliases)."""
    for token in reversed(re.split(r"[/_.\-\s]+", path.lower())):
        if token in _SPLIT_ALIASES:
            return _SPLIT_ALIASES[token]
    return None


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")


class FileIndex:
    """Finds an image file in the upload from the name a label file gives it."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.by_base: dict[str, list[str]] = {}
        for path in files:
            if path.lower().endswith(IMAGE_EXTENSIONS):
                self.by_base.setdefault(posixpath.basename(path), []).append(path)

    def find(self, name: str, relative_to: str = "",
             also: tuple[str, ...] = ()) -> tuple[str | None, str | None]:
        """Return (path, None) when found, (None, reason) when ambiguous, (None, None) when
        absent. Tries the path beside the label file, the path from the root, the paths
        in ``also``, then a unique base name."""
        name = name.replace("\\", "/")
        for candidate in (posixpath.normpath(posixpath.join(relative_to, name)),
                          posixpath.normpath(name).lstrip("/"),
                          *(posixpath.normpath(a) for a in also)):
            if candidate in self.files:
                return candidate, None
        matches = self.by_base.get(posixpath.basename(name), [])
        if len(matches) == 1:
            return matches[0], None
        if len(matches) > 1:
            return None, f"{len(matches)} files in the zip are named {posixpath.basename(name)!r}"
        return None, None


# The largest image a label file may declare, checked before anything is allocated for
# it; the import service sets these from the upload limits (TESSERA_MAX_IMAGE_*).
MAX_DECLARED_PIXELS = 100_000_000
MAX_DECLARED_SIDE = 20_000


def declared_size_ok(width: Any, height: Any, where: str, parsed: ParsedImport) -> bool:
    """True when ``width`` x ``height`` is a positive integer size within the limits;
    otherwise records a problem. Call it before drawing, decoding or rasterizing anything
    at that size (a 465-byte file can declare 100000x100000)."""
    if not (isinstance(width, int) and isinstance(height, int)) or isinstance(width, bool) \
            or isinstance(height, bool) or width <= 0 or height <= 0:
        parsed.problem("bad_image_size", f"The image size {width!r}x{height!r} is not valid.", where)
        return False
    if max(width, height) > MAX_DECLARED_SIDE or width * height > MAX_DECLARED_PIXELS:
        parsed.problem("image_too_large",
                       f"The declared image size {width}x{height} exceeds the limits "
                       f"({MAX_DECLARED_SIDE} px a side, {MAX_DECLARED_PIXELS} pixels).", where)
        return False
    return True


def in_bounds(points: list[tuple[float, float]], width: int, height: int) -> bool:
    """Every point within the image, edges included (pixel-corner coordinates 0..W, 0..H)."""
    eps = 1e-6
    return all(-eps <= x <= width + eps and -eps <= y <= height + eps for x, y in points)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value
