"""The registry of dataset formats: for each, its name, a reader, a detector and a
writer. Django-free. Adding a format is one module and one line in
:mod:`annotator.formats` (``Format("voc", "Pascal VOC", read_voc, detect_voc, write_voc)``).

* reader ``read_<fmt>(files) -> ParsedImport``, ``files`` a ``Mapping[path, bytes]``
  (a lazy one over a zip: use ``files[path]``, iteration and ``in`` only);
* detector ``detect_<fmt>(files)``: a truthy value when the upload looks like the format,
  best a short reason (``"a .json with shapes and imagePath"``), else None/False;
* writer: the module's writer (export), or None for an import-only format.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from annotator.formats.dataset import ParsedImport, ReadBudgetExceeded

Reader = Callable[[Mapping[str, bytes]], ParsedImport]
Detector = Callable[[Mapping[str, bytes]], Any]


@dataclass(frozen=True)
class Format:
    name: str
    title: str
    read: Reader | None
    detect: Detector | None = None
    write: Callable[..., Any] | None = None


@dataclass(frozen=True)
class Detection:
    """A format the upload looks like, and why."""

    name: str
    title: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "title": self.title, "reason": self.reason}


class Registry:
    def __init__(self, formats: Iterable[Format]) -> None:
        self.formats: dict[str, Format] = {}
        for fmt in formats:
            self.add(fmt)

    def add(self, fmt: Format) -> None:
        if fmt.name in self.formats:
            raise ValueError(f"format {fmt.name!r} is registered twice")
        self.formats[fmt.name] = fmt

    def __getitem__(self, name: str) -> Format:
        return self.formats[name]

    def __contains__(self, name: object) -> bool:
        return name in self.formats

    def readers(self) -> dict[str, Reader]:
        return {f.name: f.read for f in self.formats.values() if f.read is not None}

    def writers(self) -> dict[str, Callable[..., Any]]:
        return {f.name: f.write for f in self.formats.values() if f.write is not None}

    def title(self, name: str) -> str:
        return self.formats[name].title if name in self.formats else name

    def detect(self, files: Mapping[str, bytes]) -> list[Detection]:
        """Every format the upload looks like, in registry order (the first is the best
        guess). A detector that fails on a malformed file just does not match; one that
        would read past the caller's budget raises :class:`ReadBudgetExceeded`."""
        found = []
        for fmt in self.formats.values():
            if fmt.detect is None or fmt.read is None:
                continue
            try:
                verdict = fmt.detect(files)
            except ReadBudgetExceeded:
                raise
            except Exception:  # noqa: BLE001 - a detector must never break the upload
                verdict = None
            if verdict:
                reason = verdict if isinstance(verdict, str) else f"it has the layout of {fmt.title}"
                found.append(Detection(fmt.name, fmt.title, reason))
        return found
