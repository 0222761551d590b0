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
import math
import posixpath
import re
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

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
    # An error was found in this image's labels: with on_error=skip it is left out whole
    # (never imported with some of its objects missing).
    failed: bool = False


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

    def problem(self, code: str, message: str, where: str = "",
                image: ImportImage | None = None) -> None:
        """Record an error; ``image``: the image it spoils (left out by on_error=skip)."""
        self.problems.append(Problem(code, message, where))
        if image is not None:
            image.failed = True

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


@dataclass(frozen=True)
class ArchiveLimits:
    """What an uploaded zip may declare, checked from its central directory before any
    member is inflated, and again while a member is read (streaming, never past its
    declared size). The import service sets them from the settings (TESSERA_IMPORT_*)."""

    max_entries: int = 200_000
    max_total_bytes: int = 2 * 1024**3
    max_member_bytes: int = 1024**3
    max_image_bytes: int = 50 * 1024**2  # members named like images (.png, .jpg, ...)
    # uncompressed / compressed: images barely compress, JSON ~10-20x; a bomb ~1000x.
    # Only members of at least ``ratio_floor`` bytes are judged (tiny files compress well).
    max_ratio: float = 100.0
    ratio_floor: int = 1024 * 1024


ARCHIVE_LIMITS = ArchiveLimits()


class ZipFiles(Mapping[str, bytes]):
    """The members of a checked zip as a read-only ``{path: bytes}`` mapping: a member is
    inflated only when ``files[path]`` asks for it, in chunks, and refused if it grows
    past its declared size. ``budget`` caps the bytes all reads together may inflate
    (the web process only peeks at a few label files)."""

    def __init__(self, archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo],
                 budget: int | None = None) -> None:
        self._archive, self._members, self.budget = archive, members, budget

    def __getitem__(self, path: str) -> bytes:
        info = self._members[path]
        if self.budget is not None and info.file_size > self.budget:
            raise ReadBudgetExceeded(f"{path} is {info.file_size} bytes; "
                                     f"{self.budget} bytes may still be read here.")
        chunks, size = [], 0
        try:
            with self._archive.open(info) as member:
                while chunk := member.read(1024 * 1024):
                    size += len(chunk)
                    if size > info.file_size:
                        raise UploadError(f"{path} inflates past its declared {info.file_size} bytes.")
                    chunks.append(chunk)
        except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as exc:
            raise UploadError(f"{path} cannot be read from the zip: {exc}.") from None
        if self.budget is not None:
            self.budget -= size
        return b"".join(chunks)

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, path: object) -> bool:
        return path in self._members

    def size(self, path: str) -> int:
        """The declared (uncompressed) size of a member, without reading it."""
        return self._members[path].file_size


class ReadBudgetExceeded(UploadError):
    """Reading one more member would inflate more than the caller allowed."""


def open_upload(name: str, source: bytes | BinaryIO, *, limits: ArchiveLimits | None = None,
                budget: int | None = None) -> Mapping[str, bytes]:
    """The upload as ``{path: bytes}``: a zip's members (directories, ``__MACOSX`` and
    dot-files left out) as a lazy :class:`ZipFiles`, or ``{name: bytes}`` for a single
    file. Only the zip's central directory is read here: member count, total and
    per-member declared sizes and compression ratios are checked against ``limits``
    before anything is inflated. ``source``: the bytes, or a seekable binary file."""
    limits = limits or ARCHIVE_LIMITS
    stream = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    if not zipfile.is_zipfile(stream):
        stream.seek(0)
        data = source if isinstance(source, bytes | bytearray) else stream.read()
        return {posixpath.basename(name.replace("\\", "/")) or "upload.json": bytes(data)}
    try:
        stream.seek(0)
        archive = zipfile.ZipFile(stream)
        infos = [i for i in archive.infolist()
                 if not i.is_dir() and not _IGNORED_ENTRY.search(i.filename)]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, ValueError) as exc:
        raise UploadError(f"The zip cannot be read: {exc}.") from None
    check_archive(infos, limits)
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        path = posixpath.normpath(info.filename.replace("\\", "/")).lstrip("/")
        if path.startswith("../") or path == "..":
            raise UploadError(f"The zip member {info.filename!r} points outside the archive.")
        members[path] = info
    return ZipFiles(archive, members, budget)


def check_archive(infos: list[zipfile.ZipInfo], limits: ArchiveLimits) -> None:
    """Refuse a zip by what its central directory declares (nothing is inflated)."""
    if len(infos) > limits.max_entries:
        raise UploadError(f"The zip holds {len(infos)} files; the limit is {limits.max_entries}.")
    total = sum(i.file_size for i in infos)
    if total > limits.max_total_bytes:
        raise UploadError(f"The zip unpacks to {total} bytes; the limit is {limits.max_total_bytes}.")
    for info in infos:
        limit = limits.max_image_bytes if info.filename.lower().endswith(IMAGE_EXTENSIONS) \
            else limits.max_member_bytes
        if info.file_size > limit:
            raise UploadError(f"{info.filename} unpacks to {info.file_size} bytes; the limit for "
                              f"such a file is {limit}.")
        if info.file_size >= limits.ratio_floor \
                and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise UploadError(f"{info.filename} unpacks {info.file_size / max(info.compress_size, 1):.0f}"
                              f" times its compressed size (a zip bomb?); the limit is "
                              f"{limits.max_ratio:.0f}x.")
    compressed = sum(i.compress_size for i in infos)
    if total >= limits.ratio_floor and total > limits.max_ratio * max(compressed, 1):
        raise UploadError(f"The zip unpacks {total / max(compressed, 1):.0f} times its compressed "
                          f"size (a zip bomb?); the limit is {limits.max_ratio:.0f}x.")


def read_upload(name: str, data: bytes, *, limits: ArchiveLimits | None = None) -> dict[str, bytes]:
    """Every file of the upload read into a dict (tests and small uploads); the import
    itself reads through :func:`open_upload` one member at a time."""
    files = open_upload(name, data, limits=limits)
    return {path: files[path] for path in files}


def load_json(data: bytes, where: str, parsed: ParsedImport) -> Any:
    """Parse JSON, recording a problem (and returning None) when it is not valid."""
    try:
        return json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        parsed.problem("bad_json", f"Not valid JSON: {exc}.", where)
        return None


def json_documents(files: Mapping[str, bytes], limit: int = 3) -> list[tuple[str, Any]]:
    """Up to ``limit`` parsed ``.json`` files of the upload, smallest first (detectors
    look at these); files that are not valid JSON are left out."""
    paths = [p for p in files if p.lower().endswith(".json")]
    sizes = files.size if isinstance(files, ZipFiles) else (lambda p: len(files[p]))
    docs = []
    for path in sorted(paths, key=lambda p: (sizes(p), p))[:limit]:
        try:
            docs.append((path, json.loads(files[path].decode("utf-8-sig"))))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
    return docs


def split_from_path(path: str) -> str | None:
    """The split a path names: a folder or file-name token train/val/test (and aliases)."""
    for token in reversed(re.split(r"[/_.\-\s]+", path.lower())):
        if token in _SPLIT_ALIASES:
            return _SPLIT_ALIASES[token]
    return None


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")


class FileIndex:
    """Finds an image file in the upload from the name a label file gives it."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
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


def declared_size_ok(width: Any, height: Any, where: str, parsed: ParsedImport,
                     image: ImportImage | None = None) -> bool:
    """True when ``width`` x ``height`` is a positive integer size within the limits;
    otherwise records a problem. Call it before drawing, decoding or rasterizing anything
    at that size (a 465-byte file can declare 100000x100000)."""
    if not (isinstance(width, int) and isinstance(height, int)) or isinstance(width, bool) \
            or isinstance(height, bool) or width <= 0 or height <= 0:
        parsed.problem("bad_image_size", f"The image size {width!r}x{height!r} is not valid.", where, image)
        return False
    if max(width, height) > MAX_DECLARED_SIDE or width * height > MAX_DECLARED_PIXELS:
        parsed.problem("image_too_large",
                       f"The declared image size {width}x{height} exceeds the limits "
                       f"({MAX_DECLARED_SIDE} px a side, {MAX_DECLARED_PIXELS} pixels).", where, image)
        return False
    return True


def set_declared_limits(*, max_pixels: int, max_side: int) -> None:
    """Set the declared-size limits (the import service calls this with the upload
    limits from the settings)."""
    global MAX_DECLARED_PIXELS, MAX_DECLARED_SIDE
    MAX_DECLARED_PIXELS, MAX_DECLARED_SIDE = int(max_pixels), int(max_side)


def points_ok(points: list[tuple[float, float]], width: int, height: int, where: str,
              parsed: ParsedImport, image: ImportImage | None = None) -> bool:
    """Finite coordinates not absurdly far from the image (an error otherwise): a
    coordinate of 1e300 says nothing a tool could have meant, and is never drawn."""
    reach = 10 * max(width, height)
    if all(math.isfinite(x) and math.isfinite(y) and -reach <= x <= width + reach
           and -reach <= y <= height + reach for x, y in points):
        return True
    parsed.problem("bad_coordinates", f"A point is not a number or lies far outside the "
                   f"{width}x{height} image.", where, image)
    return False


def clip_points(points: list[tuple[float, float]], width: int, height: int
                ) -> tuple[list[tuple[float, float]], float]:
    """Points moved into the image (pixel-corner coordinates 0..W, 0..H), as LabelMe's
    converter and pycocotools' rasterizer effectively do, and the farthest any point
    was moved (0 when none was outside)."""
    clipped = [(min(max(x, 0.0), float(width)), min(max(y, 0.0), float(height))) for x, y in points]
    moved = max((max(abs(x - cx), abs(y - cy)) for (x, y), (cx, cy) in zip(points, clipped, strict=True)),
                default=0.0)
    return clipped, moved


def wholly_outside(points: list[tuple[float, float]], width: int, height: int) -> bool:
    """The points' bounding box does not overlap the image's interior."""
    xs, ys = [x for x, _ in points], [y for _, y in points]
    return max(xs) <= 0 or min(xs) >= width or max(ys) <= 0 or min(ys) >= height


def polygon_area(points: list[tuple[float, float]]) -> float:
    """Shoelace area (absolute) of a closed polygon."""
    n = len(points)
    return abs(sum(points[i][0] * points[(i + 1) % n][1] - points[(i + 1) % n][0] * points[i][1]
                   for i in range(n))) / 2


def degenerate_polygon(points: list[tuple[float, float]]) -> str | None:
    """Why a polygon encloses nothing (fewer than 3 distinct points, zero area), or None."""
    if len(set(points)) < 3:
        return "fewer than 3 distinct points"
    if polygon_area(points) == 0:
        return "zero area"
    return None


def clipped_message(kind: str, moved: float, width: int, height: int) -> str:
    return f"{kind} points outside the {width}x{height} image were moved onto its border " \
           f"(by up to {moved:.2f} px)"


def in_bounds(points: list[tuple[float, float]], width: int, height: int) -> bool:
    """Every point within the image, edges included (pixel-corner coordinates 0..W, 0..H)."""
    eps = 1e-6
    return all(-eps <= x <= width + eps and -eps <= y <= height + eps for x, y in points)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value
